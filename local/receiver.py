"""`python -m local receiver`: a webhook receiver for trying webhooks out. It prints each event it gets
and, given the webhook's secret, whether its Hangar-Signature is valid; it answers 200."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    expected = hmac.new(secret.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def serve(port: int, secret: str | None) -> int:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            check = ""
            if secret:
                valid = signature_valid(secret, body, self.headers.get("Hangar-Signature", ""))
                check = " signature valid" if valid else " SIGNATURE INVALID"
            print(f"{self.headers.get('Hangar-Event-Type')} {self.headers.get('Hangar-Event-Id')}{check}")
            try:
                print(json.dumps(json.loads(body), indent=2))
            except ValueError:
                print(body.decode("utf-8", "replace"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", port), Handler)
    print(f"Receiving webhooks on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
