"""The AuditEvents table: one item per audited change, under the tenant's key, sorted by time.

Key: `orgId` + `sk` = "<at>#<id>" (`at` is RFC 3339 UTC with milliseconds, so the string order is the
time order); a Query with ScanIndexForward=False lists the tenant's events newest first, and `sk >=
<since>` bounds it in time. The `ByAction` index (`actionKey` = "<orgId>#<action>", same `sk`) lists one
action's events the same way, so a filtered page is as full as an unfiltered one. `expiresAtEpoch` is
the TTL attribute (DynamoDB deletes an event some time after its 365 days; reads filter until then).
"""

from __future__ import annotations

from typing import Any

from hangar.core.config import get_settings
from hangar.store.dynamo import Item, query_page, to_item, values

BY_ACTION = "ByAction"
TABLE_KEY_NAMES = {"orgId", "sk"}
INDEX_KEY_NAMES = {"orgId", "sk", "actionKey"}


def table() -> str:
    return get_settings().audit_events_table


def event_sk(at: str, event_id: str) -> str:
    return f"{at}#{event_id}"


def action_key(org_id: str, action: str) -> str:
    return f"{org_id}#{action}"


def put_event_op(event: Item) -> dict[str, Any]:
    """The TransactWriteItems Put of one audit event (ids are random: an existing one is never replaced)."""
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(
                {
                    **event,
                    "sk": event_sk(event["at"], event["id"]),
                    "actionKey": action_key(event["orgId"], event["action"]),
                }
            ),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }


def list_events(
    org_id: str, limit: int, cursor: str | None, *, action: str | None, since: str | None, not_expired_at: int
) -> tuple[list[Item], str | None]:
    """One page of the tenant's events, newest first; only `action`'s with an action, only those at or
    after `since` (an `at` string) with one. Events past their TTL that DynamoDB has not deleted yet are
    left out (`not_expired_at`: the current epoch second)."""
    if action is None:
        partition, key_names, index = ("orgId", org_id), TABLE_KEY_NAMES, None
    else:
        partition, key_names, index = ("actionKey", action_key(org_id, action)), INDEX_KEY_NAMES, BY_ACTION
    condition = f"{partition[0]} = :partition"
    bound: dict[str, Any] = {"partition": partition[1], "now": not_expired_at}
    if since is not None:
        condition += " AND sk >= :since"
        bound["since"] = since
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": condition,
        "FilterExpression": "expiresAtEpoch > :now",
        "ExpressionAttributeValues": values(**bound),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if index is not None:
        params["IndexName"] = index
    else:
        params["ConsistentRead"] = True  # a change just made is listed at once
    return query_page(params, cursor, key_names, partition)
