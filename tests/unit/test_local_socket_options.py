"""local/'s HTTP server answers without Nagle's delay: each accepted connection has TCP_NODELAY, so a
response's last segment is not held for the client's delayed ACK (that made a lone client's heartbeat
take 52 ms for a 7.5 ms call before local/ moved to waitress; `make bench` section 4 measures it)."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

from waitress.channel import HTTPChannel

from local.http import bind, serve_wsgi, stop_wsgi, wsgi_server


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def test_accepted_connections_have_tcp_nodelay() -> None:
    sock = bind("127.0.0.1", 0, "PORT")
    server = wsgi_server(_app, sock, threads=1)
    thread = threading.Thread(target=serve_wsgi, args=(server,), daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b"{}"
        accepted = [channel.socket for channel in list(server._map.values()) if isinstance(channel, HTTPChannel)]
        assert accepted, "the server holds the keep-alive connection"
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in accepted)
        connection.close()
    finally:
        stop_wsgi(server)
        thread.join(timeout=10)
