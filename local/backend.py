"""The embedded AWS backend: a moto server in this process (DynamoDB, KMS, Secrets Manager, SSM,
API Gateway keys and usage plans — all on one endpoint).

moto's backends take no locks, so two requests racing through a conditional write could both
succeed where DynamoDB lets only one. `SerialMotoServer` serves requests on many threads but runs
them through moto one at a time: each call is atomic, as it is in DynamoDB, while the handlers that
make the calls run concurrently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import WSGIRequestHandler, make_server

from local.s3_signatures import verify_s3_requests

# The only credentials local clients sign with (local.server.aws_environment).
LOCAL_CREDENTIALS = {"testing": "testing"}


class _QuietHandler(WSGIRequestHandler):
    """No access log line per AWS call (the gateway logs what matters)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class _SerialApp:
    """A WSGI app that lets one request at a time into moto (its body fully produced under the lock)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class SerialMotoServer(ThreadedMotoServer):  # type: ignore[misc]
    """`moto.server.ThreadedMotoServer` with calls serialised through moto (see the module docstring)."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self._start_error: BaseException | None = None

    def _server_entry(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # S3's checks of presigned URLs and anonymous requests, which moto does not make.
        app = _SerialApp(verify_s3_requests(DomainDispatcherApplication(create_backend_app), LOCAL_CREDENTIALS))
        try:
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietHandler)
        except BaseException as error:  # e.g. the port is taken: report it instead of hanging start()
            self._start_error = error
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        super().start()
        if self._start_error is not None:
            raise self._start_error

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
