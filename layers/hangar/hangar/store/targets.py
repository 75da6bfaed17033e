"""Targets live in the Orgs table under the tenant's key: sk `TARGET#<id>`, so every read is tenant-scoped."""

from __future__ import annotations

from typing import Any

from hangar.store.dynamo import Item, client, delete_op, from_item, query_page, to_item, values
from hangar.store.orgs import org_key, table

TARGET_PREFIX = "TARGET#"
TARGET_KEY_NAMES = {"orgId", "sk"}


def target_sk(target_id: str) -> str:
    return TARGET_PREFIX + target_id


def get_target(org_id: str, target_id: str) -> Item | None:
    response = client().get_item(TableName=table(), Key=org_key(org_id, target_sk(target_id)), ConsistentRead=True)
    return from_item(response.get("Item"))


def list_targets(org_id: str, limit: int, cursor: str | None) -> tuple[list[Item], str | None]:
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(org=org_id, prefix=TARGET_PREFIX),
        "Limit": limit,
        "ConsistentRead": True,  # a target just created or deleted is listed as it is
    }
    return query_page(params, cursor, TARGET_KEY_NAMES, ("orgId", org_id), sk_prefix=TARGET_PREFIX)


def put_target_op(target: Item) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item({**target, "sk": target_sk(target["targetId"])}),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }


def delete_target_op(org_id: str, target_id: str) -> dict[str, Any]:
    return delete_op(table(), org_key(org_id, target_sk(target_id)), "attribute_exists(#sk)")
