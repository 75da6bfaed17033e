"""A webhook receiver on 127.0.0.1 in the test process: records every request, answers what it is told."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def signature_valid(self, secret: str) -> bool:
        """The README's verification: HMAC-SHA256(secret, "<t>.<body>") against v1."""
        parts = dict(part.split("=", 1) for part in self.headers["hangar-signature"].split(","))
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []  # status codes to answer, in turn; then `default`
        self.default = 200
        self.location: str | None = None  # answered as Location with 3xx answers
        self._lock = threading.Lock()
        self.url = ""

    def answer(self) -> int:
        with self._lock:
            return self.answers.pop(0) if self.answers else self.default

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [r.event for r in self.received if event_type is None or r.event["type"] == event_type]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state._lock:
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.answer()
            self.send_response(status)
            if 300 <= status < 400 and state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
