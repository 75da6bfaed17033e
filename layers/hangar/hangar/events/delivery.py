"""One attempt of one webhook delivery, and when to try again.

The delivery function gets one queue message per delivery. An attempt checks the URL again (DNS may
have changed since creation), POSTs the stored event signed with the webhook's secret, and records the
outcome on the delivery. A 2xx within 10 s succeeds; anything else is retried after `RETRY_DELAYS`
(each with ±20 % jitter; about 24 hours in all, 10 attempts), then the delivery is `failed`.

A retry is a new queue message, delayed as far as SQS allows (15 minutes); when it arrives before the
delivery is due it is hidden until then (its visibility timeout; SQS allows 12 hours from a message's
first receipt, so each message is hidden once, for less than that). The delivery item holds the
schedule (`nextAttemptEpoch`); messages only wake the function up.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import random
from dataclasses import dataclass

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.events.urls import WebhookUrlRefused, check_url, post
from hangar.events.webhooks import secret_context
from hangar.store import delivery_queue, kms
from hangar.store import webhooks as webhook_store
from hangar.store.webhooks import Delivery, Webhook

# Seconds from attempt n to attempt n+1: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h (~23.7 h).
RETRY_DELAYS = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Hangar-Webhooks/1.0"


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt (1-based), jittered."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return max(1, round(base * random.uniform(1 - JITTER, 1 + JITTER)))  # noqa: S311 - jitter, not a secret


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`Hangar-Signature`: t=<unix seconds>,v1=<hex HMAC-SHA256(secret as UTF-8, "<t>.<body>")>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(webhook: Webhook, delivery: Delivery, now: float) -> AttemptResult:
    """POST the delivery's event to the webhook, signed; what came of it (errors never carry a secret)."""
    try:
        target = check_url(webhook.url, get_settings().allow_insecure_webhooks)
    except WebhookUrlRefused as refused:
        return AttemptResult(None, str(refused))
    # From memory when this webhook's secret was decrypted a moment ago (a KMS call less per attempt).
    secret = kms.decrypt_reused(webhook.secret_ciphertext, secret_context(webhook.org_id, webhook.webhook_id))
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Hangar-Event-Id": delivery.event_id,
        "Hangar-Event-Type": delivery.event_type,
        "Hangar-Delivery-Id": delivery.delivery_id,
        "Hangar-Signature": signature(secret, int(now), body),
    }
    try:
        status = post(target, body, headers, TIMEOUT_SECONDS)
    except TimeoutError:
        return AttemptResult(None, f"No answer within {TIMEOUT_SECONDS:g} s")
    except (OSError, http.client.HTTPException) as error:
        return AttemptResult(None, f"{type(error).__name__}: {error}"[:300])
    if 300 <= status < 400:
        return AttemptResult(status, "Redirects are not followed")
    return AttemptResult(status, None if 200 <= status < 300 else f"HTTP {status}")


@dataclass(frozen=True)
class NextStep:
    """What the message that woke the function should do next: come back in `seconds` (`early`: this
    message, hidden; otherwise a new message for the retry, this one done)."""

    seconds: int
    early: bool


def attempt_delivery(org_id: str, webhook_id: str, delivery_id: str) -> NextStep | None:
    """Attempts the delivery if it is pending and due. None when nothing more is to be done with it."""
    delivery = webhook_store.get_delivery(org_id, webhook_id, delivery_id)
    if delivery is None or delivery.status != "pending":
        return None
    now = clock.now()
    due = float(delivery.next_attempt_epoch or 0)
    if due > now + 1:
        return NextStep(int(due - now) + 1, early=True)
    webhook = webhook_store.get_webhook(org_id, webhook_id)
    result = send(webhook, delivery, now) if webhook else AttemptResult(None, "The webhook was deleted")
    attempts = delivery.attempts + 1
    fields: dict[str, object] = {"attempts": attempts, "lastAttemptAt": clock.iso(now)}
    if result.status_code is not None:
        fields["lastStatusCode"] = result.status_code
    fields["lastError"] = result.error
    delay: int | None = None
    if result.succeeded:
        fields["status"] = "succeeded"
    elif webhook is None or attempts >= MAX_ATTEMPTS:
        fields["status"] = "failed"
    else:
        delay = retry_delay(attempts)
        fields["nextAttemptEpoch"] = now + delay
        fields["nextAttemptAt"] = clock.iso(now + delay)
    attempt = {"at": clock.iso(now), "statusCode": result.status_code, "error": result.error}
    written, _ = webhook_store.record_attempt(delivery, fields, attempt)
    return NextStep(delay, early=False) if written and delay is not None else None


def deliver_message(org_id: str, webhook_id: str, delivery_id: str, receipt_handle: str) -> int | None:
    """One queue message: attempt its delivery and queue the retry a failed attempt needs. A message
    that came before its delivery is due is hidden until then: the seconds to wait are returned."""
    step = attempt_delivery(org_id, webhook_id, delivery_id)
    if step is None:
        return None
    if not step.early:
        delivery_queue.send_delivery(org_id, webhook_id, delivery_id, delay_seconds=step.seconds)
        return None
    delivery_queue.hide_for(receipt_handle, step.seconds)
    return step.seconds
