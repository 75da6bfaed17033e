"""Targets live in the Orgs table under the tenant's key: sk `TARGET#<id>`, so every read is tenant-scoped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hangar.core.plans import Visibility
from hangar.store.dynamo import client, delete_op, from_item, query_page, to_item, values
from hangar.store.orgs import org_key, table
from hangar.store.records import Record

TARGET_PREFIX = "TARGET#"
TARGET_KEY_NAMES = {"orgId", "sk"}


@dataclass(frozen=True, slots=True)
class Target(Record):
    """A target item (sk `TARGET#<targetId>`, which `put_target_op` sets)."""

    org_id: str
    target_id: str
    name: str
    url: str
    visibility: Visibility
    created_at: str
    sk: str | None = None


def target_sk(target_id: str) -> str:
    return TARGET_PREFIX + target_id


def get_target(org_id: str, target_id: str) -> Target | None:
    response = client().get_item(TableName=table(), Key=org_key(org_id, target_sk(target_id)), ConsistentRead=True)
    item = from_item(response.get("Item"))
    return None if item is None else Target.from_item(item)


def list_targets(org_id: str, limit: int, cursor: str | None) -> tuple[list[Target], str | None]:
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(org=org_id, prefix=TARGET_PREFIX),
        "Limit": limit,
        "ConsistentRead": True,  # a target just created or deleted is listed as it is
    }
    items, next_cursor = query_page(params, cursor, TARGET_KEY_NAMES, ("orgId", org_id), sk_prefix=TARGET_PREFIX)
    return [Target.from_item(item) for item in items], next_cursor


def put_target_op(target: Target) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item({**target.to_item(), "sk": target_sk(target.target_id)}),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }


def delete_target_op(org_id: str, target_id: str) -> dict[str, Any]:
    return delete_op(table(), org_key(org_id, target_sk(target_id)), "attribute_exists(#sk)")
