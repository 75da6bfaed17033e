"""Enrollment tokens in the Tokens table (kind = enrollment): created once, used once, expiring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hangar.store.dynamo import Item, values
from hangar.store.tokens import table
from hangar.store.transactions import put_new_with


def token_key(token_id: str) -> dict[str, Any]:
    return {"tokenId": {"S": token_id}}


def put_enrollment_token(token: Item, also: Mapping[str, dict[str, Any]]) -> None:
    """Stores a new enrollment token item, in one transaction with `also` (its audit event); ids are
    random: an existing id is never overwritten."""
    put_new_with(table(), token, "tokenId", also)


def use_enrollment_token_op(token_id: str, token_hash: str, now_epoch: float, used_at: str, runner_id: str) -> Item:
    """A TransactWriteItems Update marking the token used by `runner_id`, only if it is still an unused,
    unexpired enrollment token with that hash. Refusals return the item as it was (ALL_OLD)."""
    return {
        "Update": {
            "TableName": table(),
            "Key": token_key(token_id),
            "UpdateExpression": "SET #usedAt = :usedAt, #runnerId = :runnerId",
            "ConditionExpression": (
                "#kind = :enrollment AND attribute_not_exists(#usedAt) AND #expires > :now AND #hash = :hash"
            ),
            "ExpressionAttributeNames": {
                "#usedAt": "usedAt",
                "#runnerId": "runnerId",
                "#kind": "kind",
                "#expires": "expiresAtEpoch",
                "#hash": "hash",
            },
            "ExpressionAttributeValues": values(
                usedAt=used_at, runnerId=runner_id, enrollment="enrollment", now=now_epoch, hash=token_hash
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
