"""The embedded AWS backend: moto's server (DynamoDB, S3, KMS, Secrets Manager, API Gateway keys and
usage plans, all on one endpoint), served by waitress with keep-alive.

`make run` runs it in a child process (`python -m local backend --fd N` on a socket the parent bound),
so moto and the handlers each get a core; the child exits when the parent's pipe on its stdin closes.
`SerialMotoServer` runs the same in a thread of this process (tests/integration use it).

moto's backends take no locks, so two requests racing through a conditional write could both succeed
where DynamoDB lets only one: requests are served on many threads but go through moto one at a time,
so each call is atomic, as it is in DynamoDB.
"""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from local.http import serve_wsgi, wsgi_server
from local.moto_speedups import speed_up_moto
from local.s3_signatures import verify_s3_requests
from local.transaction_tokens import MISMATCH_MESSAGE, Replay, TransactionTokens

# The credentials every local client signs with (local.server.aws_environment).
LOCAL_CREDENTIALS = {"testing": "testing"}

ADMIN_PATH = "/_local/api-key-ids"
"""POST {"value", "id"}: the next API key created with that value gets that id (restoring tenants)."""
CLOCK_PATH = "/_local/clock-offset"
"""POST {"offsetSeconds"}: SQS's clock (message delays, visibility timeouts) runs that far ahead, as the
local clock of `POST /_local/clock` does (hangar.core.clock), so queued retries come due when time is moved."""

_clock_offset_seconds = 0.0


def follow_local_clock() -> None:
    """moto's SQS reads the time through these two functions; shift them by the local clock's offset."""
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time, unix_time_millis

    setattr(sqs_models, "unix_time", lambda *args: unix_time(*args) + _clock_offset_seconds)  # noqa: B010
    setattr(sqs_models, "unix_time_millis", lambda *args: unix_time_millis(*args) + _clock_offset_seconds * 1000)  # noqa: B010


def keep_stream_iterators_current() -> None:
    """moto restores a table from a copy when a transaction on it is cancelled, stream shard included,
    while its stream iterators keep reading the shard they were made on: every record written after the
    first cancelled transaction would be invisible to them. Each read here looks the table's current
    shard up, and drops the iterator it used (local/ never reads one twice; each read makes the next)."""
    from moto.dynamodbstreams.models import ShardIterator

    read = ShardIterator.get

    def get_from_current_shard(self: Any, limit: int = 1000) -> dict[str, Any]:
        current = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        if current is not None and current.stream_shard is not None:
            self.stream_shard = current.stream_shard
        self.streams_backend.shard_iterators.pop(self.arn, None)
        result: dict[str, Any] = read(self, limit)
        return result

    ShardIterator.get = get_from_current_shard  # type: ignore[method-assign]

    # The copy moto takes of every table a transaction writes would copy each stream record too, so every
    # transaction would get slower as the stream grows. Records never change once written: the copy of a
    # shard gets a copy of the list of records, sharing the records themselves.
    from moto.dynamodb.models.table import StreamShard

    def copy_shard(self: Any, memo: dict[int, Any]) -> Any:
        copied = StreamShard.__new__(StreamShard)
        memo[id(self)] = copied
        copied.__dict__.update(self.__dict__)
        copied.items = list(self.items)  # type: ignore[attr-defined]
        copied.table = copy.deepcopy(self.table, memo)  # type: ignore[attr-defined]
        return copied

    StreamShard.__deepcopy__ = copy_shard  # type: ignore[attr-defined]


def backend_app() -> Callable[..., Iterable[bytes]]:
    from moto.apigateway.utils import ApigwApiKeyIdentifier
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.utilities.id_generator import moto_id_manager

    from local.template import ACCOUNT_ID, REGION

    # S3's checks of presigned URLs and anonymous requests, which moto does not make.
    moto = verify_s3_requests(DomainDispatcherApplication(create_backend_app), LOCAL_CREDENTIALS)
    lock = threading.Lock()
    follow_local_clock()
    keep_stream_iterators_current()
    speed_up_moto()
    tokens = TransactionTokens(now=lambda: time.time() + _clock_offset_seconds)

    def moto_answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        result = moto(environ, start_response)
        try:
            return list(result)
        finally:
            getattr(result, "close", lambda: None)()

    def transact_write(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Runs under the lock, so a retry that queued behind its own first attempt (the case a read
        timeout under load produces) finds that attempt's token remembered."""
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        body = json.loads(raw or b"{}")
        replay = tokens.replay(body)
        if replay is Replay.SUCCEEDED:
            return _json_answer(start_response, "200 OK", {})
        if replay is Replay.MISMATCH:
            mismatch = "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            return _json_answer(start_response, "400 Bad Request", {"__type": mismatch, "message": MISMATCH_MESSAGE})
        environ["wsgi.input"] = io.BytesIO(raw)
        statuses: list[str] = []

        def record_status(status: str, headers: Any, *rest: Any) -> Any:
            statuses.append(status)
            return start_response(status, headers, *rest)

        answer = moto_answer(environ, record_status)
        if statuses and statuses[0].startswith("200"):
            tokens.committed(body)
        return answer

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        global _clock_offset_seconds
        if environ.get("PATH_INFO") == CLOCK_PATH:
            wanted = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            _clock_offset_seconds = float(wanted["offsetSeconds"])
            start_response("204 No Content", [])
            return []
        if environ.get("PATH_INFO") == ADMIN_PATH:
            wanted = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            identifier = ApigwApiKeyIdentifier(ACCOUNT_ID, REGION, str(wanted["value"]))
            moto_id_manager.set_custom_id(identifier, str(wanted["id"]))
            start_response("204 No Content", [])
            return []
        with lock:  # the whole answer is produced under the lock
            if environ.get("HTTP_X_AMZ_TARGET") == "DynamoDB_20120810.TransactWriteItems":
                return transact_write(environ, start_response)
            return moto_answer(environ, start_response)

    return app


def _json_answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    start_response(status, [("Content-Type", "application/x-amz-json-1.0")])
    return [json.dumps(body).encode()]


def run_child(fd: int) -> int:
    """The child process: serve on the inherited socket until the parent goes away (stdin closes).
    Ctrl-C in `make run` reaches the whole process group: the parent decides when the child stops."""
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = wsgi_server(backend_app(), socket.socket(fileno=fd))
    threading.Thread(target=_exit_when_the_parent_leaves, name="parent-watch", daemon=True).start()
    serve_wsgi(server)
    return 0


def _exit_when_the_parent_leaves() -> None:
    """Exit at once when stdin closes. Closing the listening socket is not enough: the parent's keep-alive
    connections (every boto3 client's pool) keep waitress serving until the parent's 5 s wait runs out
    and kills the child, 5 s of every stop. The tables are in memory: nothing is left to write."""
    sys.stdin.buffer.read()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class SerialMotoServer:
    """The backend in a thread of this process, on a free port unless one is given."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.create_server((ip_address, port))
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._server = wsgi_server(backend_app(), self._socket)
        threading.Thread(target=serve_wsgi, args=(self._server,), name="moto", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
