"""API keys in the Tokens table: kind `apikey`, listed per tenant through the sparse ApiKeysByOrg index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hangar.store.dynamo import Update, apply, delete_op, query_page, values
from hangar.store.records import Record
from hangar.store.tokens import table
from hangar.store.transactions import TransactionCancelled, put_new_with, transact

API_KEYS_BY_ORG = "ApiKeysByOrg"
# lastUsedAt is recorded at most once per key per this many seconds, so most requests cost no write.
LAST_USED_GRANULARITY_SECONDS = 60
API_KEY_CURSOR_NAMES = {"tokenId", "apiKeyOrg", "createdAt"}
# What a listing may show: never `hash`.
LISTED_ATTRIBUTES = ("tokenId", "#name", "scopes", "createdAt", "lastUsedAt", "createdBy")


@dataclass(frozen=True, slots=True)
class ApiKey(Record):
    """An API key item (kind `apikey`); a listing reads only LISTED_ATTRIBUTES, so never its hash."""

    token_id: str
    name: str = ""
    scopes: tuple[str, ...] = ()
    created_at: str = ""
    created_by: str | None = None
    last_used_at: str | None = None
    kind: str = "apikey"
    org_id: str | None = None
    api_key_org: str | None = None  # the sparse ApiKeysByOrg index's partition
    hash: str | None = None  # the key's HMAC (hangar.identity.credentials.hash_token)


def put_api_key(key: ApiKey, also: Mapping[str, dict[str, Any]]) -> None:
    """Stores a new key in one transaction with `also` (its audit event); never overwrites: ids are
    random, a collision fails rather than replaces."""
    put_new_with(table(), key.to_item(), "tokenId", also)


def list_api_keys(org_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
    """The tenant's keys, newest first, without their hashes."""
    params: dict[str, Any] = {
        "TableName": table(),
        "IndexName": API_KEYS_BY_ORG,
        "KeyConditionExpression": "apiKeyOrg = :org",
        "ExpressionAttributeValues": values(org=org_id),
        "ProjectionExpression": ", ".join(LISTED_ATTRIBUTES),
        "ExpressionAttributeNames": {"#name": "name"},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    items, next_cursor = query_page(params, cursor, API_KEY_CURSOR_NAMES, ("apiKeyOrg", org_id))
    return [ApiKey.from_item(item) for item in items], next_cursor


def delete_api_key(org_id: str, key_id: str, also: Mapping[str, dict[str, Any]]) -> bool:
    """Deletes the key if it is one of this tenant's API keys, in one transaction with `also` (its audit
    event); False when it is not (or no longer) there, and then nothing is written."""
    delete = delete_op(
        table(),
        {"tokenId": {"S": key_id}},
        "#apiKeyOrg = :org AND #kind = :apikey",
        {"org": org_id, "apikey": "apikey"},
    )
    try:
        transact({"key": delete, **also})
    except TransactionCancelled as cancelled:
        if cancelled["key"].condition_failed:
            return False
        raise
    return True


def record_api_key_use(key_id: str, now_epoch: int, now_iso: str) -> None:
    """Sets lastUsedAt unless it was set within LAST_USED_GRANULARITY_SECONDS: at most one write per key per
    window, whatever the request rate. Best effort: a lost race, a deleted key or a missing
    permission never fails the request that used the key."""
    try:
        used = Update(
            table=table(),
            key={"tokenId": {"S": key_id}},
            set={"lastUsedAt": now_iso, "lastUsedAtEpoch": now_epoch},
            condition=(
                "attribute_exists(#tokenId) AND (attribute_not_exists(#lastUsedAtEpoch) OR #lastUsedAtEpoch < :cutoff)"
            ),
            values={"cutoff": now_epoch - LAST_USED_GRANULARITY_SECONDS},
        )
        apply(used, return_new=False)
    except (ClientError, BotoCoreError):
        return
