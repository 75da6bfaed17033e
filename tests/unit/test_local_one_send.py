"""local/'s HTTP server sends a response's head and its body together: waitress on its own writes them in
two sends, so every reader (the agent; the gateway's handler threads reading the embedded backend's
answers) wakes for the head and again for the body (`make bench` section 4)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from waitress import wasyncore

from local.http import bind, serve_wsgi, stop_wsgi, wsgi_server

BODY = b'{"data": "' + b"x" * 300 + b'"}'


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/chunked":  # no Content-Length: waitress chunks the body
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"first", b"second"]
    if environ["PATH_INFO"] == "/empty":
        start_response("204 No Content", [])
        return []
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """What the server's sockets send, one entry per send() call."""
    sent: list[bytes] = []
    send = wasyncore.dispatcher.send

    def recording_send(self: Any, data: bytes, do_close: bool = True) -> int:
        sent.append(bytes(data))
        result: int = send(self, data, do_close)
        return result

    monkeypatch.setattr(wasyncore.dispatcher, "send", recording_send)
    yield sent


@pytest.fixture
def connection() -> Iterator[http.client.HTTPConnection]:
    sock = bind("127.0.0.1", 0, "PORT")
    server = wsgi_server(_app, sock, threads=1, error_response=None)
    thread = threading.Thread(target=serve_wsgi, args=(server,), daemon=True)
    thread.start()
    client = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
    try:
        yield client
    finally:
        client.close()
        stop_wsgi(server)
        thread.join(timeout=10)


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("POST", path, body=b"{}")
    response = connection.getresponse()
    return response.status, response.read()


def test_a_response_head_and_body_go_out_in_one_send(
    connection: http.client.HTTPConnection, sends: list[bytes]
) -> None:
    for _ in range(3):  # on one keep-alive connection
        assert _get(connection, "/") == (200, BODY)

    assert len(sends) == 3, [len(data) for data in sends]
    assert all(data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(BODY) for data in sends)


def test_a_response_without_a_body_is_its_head_alone(
    connection: http.client.HTTPConnection, sends: list[bytes]
) -> None:
    assert _get(connection, "/empty") == (204, b"")
    assert _get(connection, "/") == (200, BODY)  # the connection is still in step

    assert [data.startswith(b"HTTP/1.1 204") for data in sends] == [True, False]
    assert sends[0][-4:] == b"\r\n\r\n"


def test_a_chunked_body_still_arrives_whole(connection: http.client.HTTPConnection, sends: list[bytes]) -> None:
    assert _get(connection, "/chunked") == (200, b"firstsecond")
    assert _get(connection, "/") == (200, BODY)

    assert sends[0].startswith(b"HTTP/1.1 200 OK\r\n") and sends[0].endswith(b"5\r\nfirst\r\n")  # head + 1st chunk
