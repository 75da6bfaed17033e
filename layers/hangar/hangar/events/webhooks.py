"""Webhooks: create (the signing secret shown once, kept only KMS-encrypted), list, get, delete, ping,
and their deliveries (list, redeliver). How a delivery is attempted: `hangar.events.delivery`.

A delivery is an item of the Webhooks table holding the exact event it carries, plus a message on the
delivery queue; its id is derived from the event and the webhook, so producing the same event twice (a
retried stream batch) gives the same delivery, never a second one."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any, cast

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import BadRequest, Forbidden, NotFound
from hangar.events.models.webhooks import (
    ALL_EVENTS,
    EVENT_TYPES,
    CreateWebhookRequest,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryView,
    WebhookView,
)
from hangar.events.urls import WebhookUrlRefused, check_url
from hangar.identity.tokens import BASE62
from hangar.store import delivery_queue, kms
from hangar.store import webhooks as webhook_store
from hangar.store.transactions import TransactionCancelled, transact
from hangar.store.webhooks import Delivery, Webhook

WEBHOOKS_PER_TENANT = 20
SECRET_PREFIX = "whsec_"
DELIVERY_RETENTION_DAYS = 30


def new_webhook_id() -> str:
    return "whk_" + secrets.token_hex(8)


def new_secret() -> str:
    return SECRET_PREFIX + "".join(secrets.choice(BASE62) for _ in range(40))


def secret_context(org_id: str, webhook_id: str) -> dict[str, str]:
    """KMS encryption context: a ciphertext only decrypts as the secret of the webhook it was made for."""
    return {"orgId": org_id, "webhookId": webhook_id, "purpose": "webhook-signing-secret"}


def check_webhook_url(url: str) -> None:
    """The URL rules (https, public addresses; loopback only with AllowInsecureWebhooks): 400 on `url`."""
    try:
        check_url(url, get_settings().allow_insecure_webhooks)
    except WebhookUrlRefused as refused:
        raise BadRequest(str(refused), code="webhook_url_refused", field="url") from None


def subscribed_events(events: list[str]) -> list[str]:
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise BadRequest(f"Unknown event type(s): {', '.join(unknown)}", field="events")
    return [event for event in EVENT_TYPES if event in events]


def create_webhook(org_id: str, request: CreateWebhookRequest) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (the only time the plaintext leaves Hangar)."""
    events = subscribed_events(request.events)
    check_webhook_url(request.url)
    webhook_id, secret = new_webhook_id(), new_secret()
    ciphertext = kms.encrypt(secret, secret_context(org_id, webhook_id))
    if ciphertext is None:  # fail closed: a secret is never stored in the clear
        raise RuntimeError("SETUP_TOKEN_KMS_KEY_ID is not set: webhook secrets cannot be stored")
    webhook = Webhook(
        org_id=org_id,
        webhook_id=webhook_id,
        url=request.url,
        events=tuple(events),
        description=request.description,
        secret_ciphertext=ciphertext,
        created_at=clock.iso(),
    )
    try:
        transact(
            {
                **webhook_store.put_webhook_ops(webhook, WEBHOOKS_PER_TENANT),
                "audit": audit.operation("webhook.create", org_id, "webhook", webhook_id),
            }
        )
    except TransactionCancelled as cancelled:
        if cancelled["count"].condition_failed:
            raise Forbidden(
                f"A tenant has at most {WEBHOOKS_PER_TENANT} webhooks; delete one first", code="webhook_limit_reached"
            ) from None
        raise
    return webhook, secret


def get_webhook(org_id: str, webhook_id: str) -> Webhook:
    webhook = webhook_store.get_webhook(org_id, webhook_id)
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found", field="webhookId")
    return webhook


def list_webhooks(org_id: str, limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
    return webhook_store.list_webhooks(org_id, limit, cursor)


def delete_webhook(org_id: str, webhook_id: str) -> None:
    """Deletes the webhook: nothing more is sent to it (pending deliveries fail at their next attempt)."""
    try:
        transact(
            {
                **webhook_store.delete_webhook_ops(org_id, webhook_id),
                "audit": audit.operation("webhook.delete", org_id, "webhook", webhook_id),
            }
        )
    except TransactionCancelled as cancelled:
        if cancelled["webhook"].condition_failed:
            raise NotFound(f"Webhook {webhook_id} not found", field="webhookId") from None
        raise


def webhook_view(webhook: Webhook) -> WebhookView:
    return WebhookView(
        id=webhook.webhook_id,
        url=webhook.url,
        events=list(webhook.events),
        description=webhook.description,
        createdAt=webhook.created_at,
    )


def wants(webhook: Webhook, event_type: str) -> bool:
    return ALL_EVENTS in webhook.events or event_type in webhook.events


# --- deliveries ---------------------------------------------------------------------------------------


def delivery_id_for(created_epoch: float, *parts: str) -> str:
    """`dlv_<creation ms, 12 hex><12 hex of a hash of parts>`: ordered by time, and the same parts give
    the same id."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
    return f"dlv_{int(created_epoch * 1000):012x}{digest}"


def enqueue_delivery(webhook: Webhook, envelope: dict[str, Any], delivery_id: str) -> Delivery:
    """The delivery of `envelope` to `webhook`, stored (once) and queued for its first attempt now."""
    now = clock.now()
    delivery = Delivery(
        org_id=webhook.org_id,
        delivery_id=delivery_id,
        webhook_id=webhook.webhook_id,
        event_id=envelope["id"],
        event_type=envelope["type"],
        payload=json.dumps(envelope, separators=(",", ":")),
        status="pending",
        attempts=0,
        created_at=clock.iso(now),
        next_attempt_at=clock.iso(now),
        next_attempt_epoch=now,
        expires_at_epoch=int(now) + DELIVERY_RETENTION_DAYS * 86400,
    )
    created, stored = webhook_store.put_new_delivery(delivery)
    # Queued again when an earlier try stored it but may not have queued it (at least once).
    if created or (stored.status == "pending" and stored.attempts == 0):
        delivery_queue.send_delivery(stored.org_id, stored.webhook_id, stored.delivery_id)
    return stored


def epoch_of(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def fan_out(org_id: str, envelope: dict[str, Any], webhooks: list[Webhook]) -> list[Delivery]:
    """A delivery of the event to each of the tenant's webhooks that subscribes to its type."""
    created_epoch = epoch_of(envelope["createdAt"])  # not now: a retried batch must find the same ids
    return [
        enqueue_delivery(webhook, envelope, delivery_id_for(created_epoch, envelope["id"], webhook.webhook_id))
        for webhook in webhooks
        if webhook.org_id == org_id and wants(webhook, envelope["type"])
    ]


def send_ping(org_id: str, webhook_id: str) -> Delivery:
    """`POST /v1/webhooks/{id}/test`: a `ping` event, delivered like any other."""
    webhook = get_webhook(org_id, webhook_id)
    now, event_id = clock.now(), "evt_" + secrets.token_hex(16)
    envelope: dict[str, Any] = {
        "id": event_id,
        "type": "ping",
        "createdAt": clock.iso(now),
        "orgId": org_id,
        "data": {"webhook": webhook_view(webhook).model_dump(mode="json")},
    }
    return enqueue_delivery(webhook, envelope, delivery_id_for(now, event_id, webhook_id))


def list_deliveries(org_id: str, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
    get_webhook(org_id, webhook_id)
    return webhook_store.list_deliveries(org_id, webhook_id, limit, cursor)


def redeliver(org_id: str, webhook_id: str, delivery_id: str) -> Delivery:
    """A new delivery of the same event (same event id and body) with a fresh retry schedule, whatever
    became of the first one (succeeded, failed or still pending)."""
    webhook = get_webhook(org_id, webhook_id)
    original = webhook_store.get_delivery(org_id, webhook_id, delivery_id)
    if original is None:
        raise NotFound(f"Delivery {delivery_id} not found", field="deliveryId")
    envelope: dict[str, Any] = json.loads(original.payload)
    now = clock.now()
    return enqueue_delivery(webhook, envelope, delivery_id_for(now, envelope["id"], webhook_id, secrets.token_hex(8)))


def delivery_view(delivery: Delivery) -> DeliveryView:
    return DeliveryView(
        id=delivery.delivery_id,
        webhookId=delivery.webhook_id,
        eventId=delivery.event_id,
        eventType=delivery.event_type,
        status=cast(DeliveryStatus, delivery.status),  # as stored: the view validates it
        attempts=delivery.attempts,
        lastStatusCode=delivery.last_status_code,
        lastError=delivery.last_error,
        createdAt=delivery.created_at,
        nextAttemptAt=delivery.next_attempt_at if delivery.status == "pending" else None,
        attemptHistory=[DeliveryAttempt(**attempt) for attempt in delivery.attempt_history],
    )
