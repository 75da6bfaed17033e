"""Fixed-window request counters in the Orgs table (item `orgId` + sk `RATE#<name>#<windowStart>`).

One conditional UpdateItem per counted request: the counter goes up only while it is below the
limit, so a refused request writes nothing. The item expires through the table's TTL attribute
(`expiresAtEpoch`) a day after its window ends; until DynamoDB deletes it, it is simply never read
again because later requests fall into later windows.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from hangar.store.dynamo import client, is_condition_failure, values
from hangar.store.orgs import org_key, table

RATE_SK_PREFIX = "RATE#"


def window_sk(name: str, window_start: int) -> str:
    return f"{RATE_SK_PREFIX}{name}#{window_start}"


def count_in_window_op(org_id: str, name: str, window_start: int, limit: int, expires_at_epoch: int) -> dict[str, Any]:
    """A TransactWriteItems Update counting one request in the window, only while it holds fewer than
    `limit` (run alone by `count`, or inside the caller's transaction: counted only if that commits)."""
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id, window_sk(name, window_start)),
            "UpdateExpression": "ADD hits :one SET expiresAtEpoch = :expires",
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeValues": values(one=1, limit=limit, expires=expires_at_epoch),
        }
    }


def count(operation: dict[str, Any]) -> bool:
    """Runs a `count_in_window_op` on its own; False (and nothing written) when the window is full."""
    try:
        client().update_item(**operation["Update"])
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
    return True
