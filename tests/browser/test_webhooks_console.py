"""The Webhooks page against the /v1/webhooks routes (events, webhooks and deliveries): add a webhook
(its secret shown once), send a test ping to a real local receiver, see the delivery fail, redeliver it,
see it succeed - with `POST /_local/deliveries/flush` making due deliveries happen now."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from console_harness import ConsoleServer, screenshot, sign_in
from playwright.sync_api import Page, expect


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that answers 500 to its first ping and 204 to everything else. It keeps
    only pings: the webhook takes every event, and other tests share the server's demo org."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            first_ping = False
            if self.headers.get("Hangar-Event-Type") == "ping":
                received.append((dict(self.headers.items()), body))
                first_ping = len(received) == 1
            self.send_response(500 if first_ping else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hangar-events", received)
    finally:
        server.shutdown()
        server.server_close()


def flush(server: ConsoleServer) -> None:
    result = server.api.call("POST", "/_local/deliveries/flush")
    assert result.status == 200, result.body


def test_add_a_webhook_see_a_failed_delivery_and_redeliver_it(
    page: Page, server: ConsoleServer, receiver: Receiver
) -> None:
    sign_in(page, server)
    page.get_by_role("navigation").get_by_role("link", name="Webhooks").click()
    page.get_by_role("button", name="Add webhook").click()
    page.get_by_label("URL (https, public)").fill(receiver.url)
    page.get_by_label("Description (optional)").fill("browser test receiver")
    page.get_by_role("dialog").get_by_role("button", name="Add webhook").click()
    secret = page.locator('[data-copy="Signing secret"] code').inner_text()
    assert secret.startswith("whsec_")
    page.get_by_role("button", name="Done").click()
    row = page.locator("tr", has=page.get_by_text(receiver.url))
    expect(row).to_contain_text("all events")
    screenshot(page, "webhooks")

    row.get_by_role("button", name="Send test").click()
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    flush(server)
    headers, body = receiver.received[0]
    timestamp, signature = (part.split("=", 1)[1] for part in headers["Hangar-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert headers["Hangar-Event-Type"] == "ping"

    row.get_by_role("button", name="Deliveries").click()
    # The Event cell holds the type and the event id: the row is the one whose text has "ping".
    delivery = page.locator("tbody tr").filter(has_text="ping").first
    expect(delivery).to_contain_text("HTTP 500", timeout=5000)
    expect(delivery.locator(".badge")).not_to_have_text("succeeded")
    with page.expect_response(lambda response: response.url.endswith("/redeliver")) as redelivered:
        delivery.get_by_role("button", name="Redeliver").click()
    assert redelivered.value.ok  # queued before the flush below runs
    flush(server)
    expect(page.locator(".badge", has_text="succeeded").first).to_be_visible(timeout=5000)
    assert len(receiver.received) == 2
    screenshot(page, "deliveries")
