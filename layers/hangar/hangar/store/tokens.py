"""The Tokens table: hashed runner tokens, enrollment tokens and API keys, keyed by token id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hangar.core.config import get_settings
from hangar.store.dynamo import Item, Update, apply, client, from_item, to_item
from hangar.store.records import Record


@dataclass(frozen=True, slots=True)
class RunnerToken(Record):
    """A runner token item (kind `runner`): all the runner authorizer needs, in one read."""

    token_id: str
    org_id: str
    runner_id: str
    hash: str = ""  # the token's HMAC (hangar.identity.credentials.hash_token)
    kind: str = "runner"
    token_version: int = 0  # the runner's tokenVersion this token was minted at
    labels: tuple[str, ...] = ()  # the runner's labels, for the authorizer's routing hint
    usage_key: str | None = None  # the tenant's usage-plan key
    created_at: str | None = None


def table() -> str:
    return get_settings().tokens_table


def get_token(token_id: str) -> Item | None:
    response = client().get_item(TableName=table(), Key={"tokenId": {"S": token_id}}, ConsistentRead=True)
    return from_item(response.get("Item"))


def get_runner_token(token_id: str) -> RunnerToken | None:
    """The runner token under this id; None when there is none, or the id is another kind of token's."""
    item = get_token(token_id)
    return None if item is None or item.get("kind") != "runner" else RunnerToken.from_item(item)


def put_token_op(token: RunnerToken) -> dict[str, Any]:
    """A TransactWriteItems Put for a new token item (never overwrites: ids are random, collisions fail)."""
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(token.to_item()),
            "ConditionExpression": "attribute_not_exists(tokenId)",
        }
    }


def delete_token_op(token_id: str) -> dict[str, Any]:
    return {"Delete": {"TableName": table(), "Key": {"tokenId": {"S": token_id}}}}


def _existing_token_update(token_id: str, fields: Item) -> Update:
    return Update(table=table(), key={"tokenId": {"S": token_id}}, set=fields, condition="attribute_exists(#tokenId)")


def set_token_labels_op(token_id: str, labels: list[str]) -> dict[str, Any]:
    """A TransactWriteItems Update of the labels the runner authorizer routes by, on an existing token."""
    return _existing_token_update(token_id, {"labels": labels}).op()


def set_token_usage_key(token_id: str, usage_key: str) -> None:
    """The usage-plan key a runner token is counted under (a tenant moved from a shared key to its own).
    A token deleted meanwhile (regenerated, runner deleted) needs nothing."""
    apply(_existing_token_update(token_id, {"usageKey": usage_key}), return_new=False)
