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
    client,
    from_item,
    is_condition_failure,
    query_page,
    to_item,
    update,
    update_expression,
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


def _query(org_id: str, prefix: str, limit: int, cursor: str | None, newest_first: bool = False) -> Any:
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(org=org_id, prefix=prefix),
        "Limit": limit,
        "ConsistentRead": True,
        "ScanIndexForward": not newest_first,
    }
    return query_page(params, cursor, KEY_NAMES, ("orgId", org_id), sk_prefix=prefix)


def list_webhooks(org_id: str, limit: int, cursor: str | None) -> tuple[list[Item], str | None]:
    items, next_cursor = _query(org_id, WEBHOOK_PREFIX, limit, cursor)
    return items, next_cursor


def all_webhooks(org_id: str) -> list[Item]:
    """Every webhook of the tenant (at most the per-tenant limit: one page)."""
    items: list[Item] = []
    cursor: str | None = None
    while True:
        page, cursor = list_webhooks(org_id, 100, cursor)
        items.extend(page)
        if cursor is None:
            return items


def put_webhook_ops(webhook: Item, limit: int) -> dict[str, dict[str, Any]]:
    """The create transaction: the count goes up only while under `limit`, and the webhook is new."""
    org_id = webhook["orgId"]
    return {
        "count": {
            "Update": {
                "TableName": table(),
                "Key": _key(org_id, COUNT_SK),
                "UpdateExpression": "ADD #count :one",
                "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
                "ExpressionAttributeNames": {"#count": "webhookCount"},
                "ExpressionAttributeValues": values(one=1, limit=limit),
            }
        },
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
        "webhook": {
            "Delete": {
                "TableName": table(),
                "Key": _key(org_id, webhook_sk(webhook_id)),
                "ConditionExpression": "attribute_exists(sk)",
            }
        },
        "count": {
            "Update": {
                "TableName": table(),
                "Key": _key(org_id, COUNT_SK),
                "UpdateExpression": "ADD #count :minus",
                "ConditionExpression": "#count > :zero",
                "ExpressionAttributeNames": {"#count": "webhookCount"},
                "ExpressionAttributeValues": values(minus=-1, zero=0),
            }
        },
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
    items, next_cursor = _query(org_id, f"{DELIVERY_PREFIX}{webhook_id}#", limit, cursor, newest_first=True)
    return items, next_cursor


def record_attempt(delivery: Item, fields: dict[str, Any], attempt: Item) -> tuple[bool, Item | None]:
    """Records one attempt of a pending delivery, only if no other attempt was recorded meanwhile (a
    duplicate queue message): (True, the delivery now) or (False, the delivery as it is)."""
    expression, names, vals = update_expression(fields)
    names["#history"], names["#status"], names["#attempts"] = "attemptHistory", "status", "attempts"
    vals.update(values(attempt=[attempt], empty=[], pending="pending", seen=int(delivery.get("attempts", 0))))
    return update(
        {
            "TableName": table(),
            "Key": _key(delivery["orgId"], delivery["sk"]),
            "UpdateExpression": f"{expression}, #history = list_append(if_not_exists(#history, :empty), :attempt)",
            "ConditionExpression": "#status = :pending AND #attempts = :seen",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals,
        }
    )
