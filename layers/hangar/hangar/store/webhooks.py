"""The Webhooks table, `orgId` + `sk`, so every read goes through the caller's tenant key:
- `WEBHOOK#<webhookId>`: a webhook (its signing secret only as KMS ciphertext);
- `WEBHOOKS`: the tenant's webhook count, which the create transaction holds under the limit;
- `DELIVERY#<webhookId>#<deliveryId>`: one delivery of one event to one webhook (TTL `expiresAtEpoch`).
Delivery ids start with their creation time, so a webhook's deliveries read newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from hangar.core.config import get_settings
from hangar.store.dynamo import (
    Item,
    Update,
    apply,
    client,
    delete_op,
    from_item,
    is_condition_failure,
    query_all,
    query_page,
    to_item,
    values,
)
from hangar.store.records import Record, unwritten

WEBHOOK_PREFIX = "WEBHOOK#"
COUNT_SK = "WEBHOOKS"
DELIVERY_PREFIX = "DELIVERY#"
KEY_NAMES = {"orgId", "sk"}


@dataclass(frozen=True, slots=True)
class Webhook(Record):
    """A webhook item (sk `WEBHOOK#<webhookId>`, which `put_webhook_ops` sets)."""

    org_id: str
    webhook_id: str
    url: str
    secret_ciphertext: str  # the signing secret, KMS-encrypted (never stored in the clear)
    created_at: str
    events: tuple[str, ...] = ()  # event types, or ("*",) for all
    description: str | None = None
    sk: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery(Record):
    """A delivery item (sk `DELIVERY#<webhookId>#<deliveryId>`, which `put_new_delivery` sets); an
    attribute stored as NULL (lastError after a success) reads as absent."""

    org_id: str
    delivery_id: str
    webhook_id: str
    event_id: str
    event_type: str
    payload: str  # the event envelope as sent, compact JSON
    status: str  # pending | succeeded | failed
    created_at: str
    attempts: int = 0
    next_attempt_at: str | None = None
    next_attempt_epoch: float | None = None  # as stored (int or float)
    last_attempt_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    attempt_history: tuple[dict[str, Any], ...] = unwritten(())  # appended by each attempt
    expires_at_epoch: int | None = None  # TTL
    sk: str | None = None


def table() -> str:
    return get_settings().webhooks_table


def _key(org_id: str, sk: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "sk": {"S": sk}}


def webhook_sk(webhook_id: str) -> str:
    return WEBHOOK_PREFIX + webhook_id


def delivery_sk(webhook_id: str, delivery_id: str) -> str:
    return f"{DELIVERY_PREFIX}{webhook_id}#{delivery_id}"


def _get(org_id: str, sk: str) -> Item | None:
    response = client().get_item(TableName=table(), Key=_key(org_id, sk), ConsistentRead=True)
    return from_item(response.get("Item"))


def get_webhook(org_id: str, webhook_id: str) -> Webhook | None:
    item = _get(org_id, webhook_sk(webhook_id))
    return None if item is None else Webhook.from_item(item)


def _prefix_query(org_id: str, prefix: str, newest_first: bool = False) -> dict[str, Any]:
    return {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(org=org_id, prefix=prefix),
        "ConsistentRead": True,
        "ScanIndexForward": not newest_first,
    }


def _page(
    org_id: str, prefix: str, limit: int, cursor: str | None, newest_first: bool = False
) -> tuple[list[Item], str | None]:
    params = {**_prefix_query(org_id, prefix, newest_first), "Limit": limit}
    return query_page(params, cursor, KEY_NAMES, ("orgId", org_id), sk_prefix=prefix)


def list_webhooks(org_id: str, limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
    items, next_cursor = _page(org_id, WEBHOOK_PREFIX, limit, cursor)
    return [Webhook.from_item(item) for item in items], next_cursor


def all_webhooks(org_id: str) -> list[Webhook]:
    """Every webhook of the tenant (at most the per-tenant limit: one page)."""
    return [Webhook.from_item(item) for item in query_all(_prefix_query(org_id, WEBHOOK_PREFIX))]


def _count_update(org_id: str, **kwargs: Any) -> Update:
    return Update(table=table(), key=_key(org_id, COUNT_SK), **kwargs)


def put_webhook_ops(webhook: Webhook, limit: int) -> dict[str, dict[str, Any]]:
    """The create transaction: the count goes up only while under `limit`, and the webhook is new."""
    return {
        "count": _count_update(
            webhook.org_id,
            add={"webhookCount": 1},
            condition="attribute_not_exists(#webhookCount) OR #webhookCount < :limit",
            values={"limit": limit},
        ).op(),
        "webhook": {
            "Put": {
                "TableName": table(),
                "Item": to_item({**webhook.to_item(), "sk": webhook_sk(webhook.webhook_id)}),
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        },
    }


def delete_webhook_ops(org_id: str, webhook_id: str) -> dict[str, dict[str, Any]]:
    return {
        "webhook": delete_op(table(), _key(org_id, webhook_sk(webhook_id)), "attribute_exists(#sk)"),
        "count": _count_update(
            org_id, add={"webhookCount": -1}, condition="#webhookCount > :zero", values={"zero": 0}
        ).op(),
    }


# --- deliveries ---------------------------------------------------------------------------------------


def put_new_delivery(delivery: Delivery) -> tuple[bool, Delivery]:
    """Stores a delivery unless one exists under its id: (True, it) or (False, the one already there).
    Ids are derived from the event and the webhook, so a retried stream batch finds its own delivery."""
    item = {**delivery.to_item(), "sk": delivery_sk(delivery.webhook_id, delivery.delivery_id)}
    try:
        client().put_item(
            TableName=table(),
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(sk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        return False, Delivery.from_item(from_item(error.response.get("Item")) or item)  # type: ignore[arg-type]
    return True, Delivery.from_item(item)


def get_delivery(org_id: str, webhook_id: str, delivery_id: str) -> Delivery | None:
    item = _get(org_id, delivery_sk(webhook_id, delivery_id))
    return None if item is None else Delivery.from_item(item)


def list_deliveries(org_id: str, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
    items, next_cursor = _page(org_id, f"{DELIVERY_PREFIX}{webhook_id}#", limit, cursor, newest_first=True)
    return [Delivery.from_item(item) for item in items], next_cursor


def record_attempt(delivery: Delivery, fields: dict[str, Any], attempt: Item) -> tuple[bool, Delivery | None]:
    """Records one attempt of a pending delivery, only if no other attempt was recorded meanwhile (a
    duplicate queue message): (True, the delivery now) or (False, the delivery as it is)."""
    written, item = apply(
        Update(
            table=table(),
            key=_key(delivery.org_id, delivery_sk(delivery.webhook_id, delivery.delivery_id)),
            set=fields,
            set_expressions=["#attemptHistory = list_append(if_not_exists(#attemptHistory, :empty), :attempt)"],
            condition="#status = :pending AND #attempts = :seen",
            values={"attempt": [attempt], "empty": [], "pending": "pending", "seen": delivery.attempts},
        )
    )
    return written, None if item is None else Delivery.from_item(item)
