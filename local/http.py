"""HTTP for the local stack: waitress serves the WSGI apps (HTTP/1.1 keep-alive, TCP_NODELAY, a response's
head and first body chunk in one send, chunked bodies), sockets are bound up front so a taken port is
reported at once, and requests and responses convert between WSGI and the gateway's `HttpRequest` /
`HttpResponse`.

werkzeug's development server (which moto brings) closes every connection after one response, so it
cannot serve keep-alive clients; waitress is the pure-Python WSGI server that can (docs/decisions.md).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask, Task, WSGITask

if TYPE_CHECKING:
    from local.gateway import HttpRequest, HttpResponse

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit; waitress refuses a larger body before reading it."""
WsgiApp = Callable[..., Iterable[bytes]]


class PortInUse(OSError):
    pass


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket; a taken port raises PortInUse naming the setting that picks another."""
    try:
        return socket.create_server((host, port), backlog=128)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use: set {setting}=<another port>") from None
        raise


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class _Collected:
    """Stands in for a waitress channel while a task writes its response head: keeps what is written."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.parts: list[bytes] = []

    def __getattr__(self, name: str) -> Any:  # the head reads the server's settings through the channel
        return getattr(self.channel, name)

    def write_soon(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


class _OneSend(Task):  # type: ignore[misc]
    """A response's head goes out with its first body chunk, in one send: waitress writes them separately
    (two sends, two segments), so the reader wakes for the head and again for the body. On loopback with
    TCP_NODELAY that is an extra syscall each side per hop, and in the gateway a handler thread reading
    moto's answer takes the GIL back twice (docs/decisions.md, "local/ gateway speed")."""

    channel: Any  # waitress's HTTPChannel (untyped)

    def write(self, data: bytes) -> None:
        if self.wrote_header:
            super().write(data)
            return
        channel = self.channel
        collected = _Collected(channel)
        self.channel = collected
        try:
            super().write(data)
        finally:
            self.channel = channel
        channel.write_soon(b"".join(collected.parts))


class _OneSendWSGITask(_OneSend, WSGITask):  # type: ignore[misc]
    pass


def wsgi_server(
    app: WsgiApp, sock: socket.socket, threads: int = 8, error_response: Callable[[int], HttpResponse] | None = None
) -> Any:
    """A waitress server on `sock`; `error_response(status)` renders what waitress refuses itself (a
    body over MAX_REQUEST_BYTES, a malformed request) instead of its plain-text page."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N": a burst, not news
    server = create_server(
        app,
        sockets=[sock],
        threads=threads,
        connection_limit=500,
        max_request_body_size=MAX_REQUEST_BYTES,
        ident="HangarLocal",
        expose_tracebacks=False,
        asyncore_use_poll=True,
    )
    tasks: dict[str, type] = {"task_class": _OneSendWSGITask}
    if error_response is not None:
        render = error_response

        class _ErrorTask(_OneSend, ErrorTask):  # type: ignore[misc]
            def execute(self) -> None:
                response = render(int(self.request.error.code))
                self.status = f"{response.status} {self.request.error.reason}"
                self.response_headers.extend(response.headers)
                self.set_close_on_finish()
                self.content_length = len(response.body)
                self.write(response.body)

        tasks["error_task_class"] = _ErrorTask
    server.channel_class = type("LocalChannel", (HTTPChannel,), tasks)
    return server


def serve_wsgi(server: Any) -> None:
    """Serve until `stop_wsgi` (or a signal in this thread)."""
    try:
        server.run()
    finally:
        stop_wsgi(server)


def stop_wsgi(server: Any) -> None:
    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(server._map)


def request_of(environ: dict[str, Any]) -> HttpRequest:
    """The gateway's view of a WSGI request: the path as sent (percent-encoded), headers, body."""
    from local.gateway import HttpRequest

    raw = environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/").encode("latin-1"))
    if raw.startswith(("http://", "https://")):  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    headers = [
        (key[5:].replace("_", "-").title() if key.startswith("HTTP_") else key.replace("_", "-").title(), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
    ]
    return HttpRequest(
        method=environ["REQUEST_METHOD"],
        raw_path=raw.partition("?")[0] or "/",
        query_string=environ.get("QUERY_STRING", ""),
        headers=[(k, v) for k, v in headers if v or k != "Content-Length"],
        body=environ["wsgi.input"].read(),  # waitress has read it all (and de-chunked it): input is terminated
        source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
        host=environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}",
    )


def respond(response: HttpResponse, start_response: Callable[..., Any], head: bool = False) -> list[bytes]:
    from http import HTTPStatus

    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    skipped = ("content-length", "connection", "transfer-encoding", "date")
    headers = [(name, value) for name, value in response.headers if name.lower() not in skipped]
    start_response(f"{response.status} {reason}", [*headers, ("Content-Length", str(len(response.body)))])
    return [] if head else [response.body]
