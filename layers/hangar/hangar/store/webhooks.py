"""The Webhooks table, `orgId` + `sk`, so every read goes through the caller's tenant key:
- `WEBHOOK#<webhookId>`: a webhook (its signing secret only as KMS ciphertext);
- `WEBHOOKS`: the tenant's webhook count, which the create transaction holds under the limit;
- `DELIVERY#<webhookId>#<deliveryId>`: one delivery of one event to one webhook (TTL `expiresAtEpoch`).
Delivery ids start with their creation time, so a webhook's deliveries read newest first."""

from __future__ import annotations

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

WEBHOOK_PREFIX = "WEBHOOK#"
COUNT_SK = "WEBHOOKS"
DELIVERY_PREFIX = "DELIVERY#"
KEY_NAMES = {"orgId", "sk"}


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


def get_webhook(org_id: str, webhook_id: str) -> Item | None:
    return _get(org_id, webhook_sk(webhook_id))


def _prefix_query(org_id: str, prefix: str, newest_first: bool = False) -> dict[str, Any]:
    return {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(org=org_id, prefix=prefix),
        "ConsistentRead": True,
        "ScanIndexForward": not newest_first,
    }


def _page(org_id: str, prefix: str, limit: int, cursor: str | None, newest_first: bool = False) -> Any:
    params = {**_prefix_query(org_id, prefix, newest_first), "Limit": limit}
    return query_page(params, cursor, KEY_NAMES, ("orgId", org_id), sk_prefix=prefix)


def list_webhooks(org_id: str, limit: int, cursor: str | None) -> tuple[list[Item], str | None]:
    items, next_cursor = _page(org_id, WEBHOOK_PREFIX, limit, cursor)
    return items, next_cursor


def all_webhooks(org_id: str) -> list[Item]:
    """Every webhook of the tenant (at most the per-tenant limit: one page)."""
    return query_all(_prefix_query(org_id, WEBHOOK_PREFIX))


def _count_update(org_id: str, **kwargs: Any) -> Update:
    return Update(table=table(), key=_key(org_id, COUNT_SK), **kwargs)


def put_webhook_ops(webhook: Item, limit: int) -> dict[str, dict[str, Any]]:
    """The create transaction: the count goes up only while under `limit`, and the webhook is new."""
    org_id = webhook["orgId"]
    return {
        "count": _count_update(
            org_id,
            add={"webhookCount": 1},
            condition="attribute_not_exists(#webhookCount) OR #webhookCount < :limit",
            values={"limit": limit},
        ).op(),
        "webhook": {
            "Put": {
                "TableName": table(),
                "Item": to_item({**webhook, "sk": webhook_sk(webhook["webhookId"])}),
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


def put_new_delivery(delivery: Item) -> tuple[bool, Item]:
    """Stores a delivery unless one exists under its id: (True, it) or (False, the one already there).
    Ids are derived from the event and the webhook, so a retried stream batch finds its own delivery."""
    item = {**delivery, "sk": delivery_sk(delivery["webhookId"], delivery["deliveryId"])}
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
        return False, from_item(error.response.get("Item")) or item  # type: ignore[arg-type]
    return True, item


def get_delivery(org_id: str, webhook_id: str, delivery_id: str) -> Item | None:
    return _get(org_id, delivery_sk(webhook_id, delivery_id))


def list_deliveries(org_id: str, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Item], str | None]:
    items, next_cursor = _page(org_id, f"{DELIVERY_PREFIX}{webhook_id}#", limit, cursor, newest_first=True)
    return items, next_cursor


def record_attempt(delivery: Item, fields: dict[str, Any], attempt: Item) -> tuple[bool, Item | None]:
    """Records one attempt of a pending delivery, only if no other attempt was recorded meanwhile (a
    duplicate queue message): (True, the delivery now) or (False, the delivery as it is)."""
    return apply(
        Update(
            table=table(),
            key=_key(delivery["orgId"], delivery["sk"]),
            set=fields,
            set_expressions=["#attemptHistory = list_append(if_not_exists(#attemptHistory, :empty), :attempt)"],
            condition="#status = :pending AND #attempts = :seen",
            values={"attempt": [attempt], "empty": [], "pending": "pending", "seen": int(delivery.get("attempts", 0))},
        )
    )
