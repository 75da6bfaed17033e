"""The Tokens table: hashed runner tokens, enrollment tokens and API keys, keyed by token id."""

from __future__ import annotations

from typing import Any

from hangar.core.config import get_settings
from hangar.store.dynamo import Item, Update, apply, client, from_item, to_item


def table() -> str:
    return get_settings().tokens_table


def get_token(token_id: str) -> Item | None:
    response = client().get_item(TableName=table(), Key={"tokenId": {"S": token_id}}, ConsistentRead=True)
    return from_item(response.get("Item"))


def put_token_op(token: Item) -> dict[str, Any]:
    """A TransactWriteItems Put for a new token item (never overwrites: ids are random, collisions fail)."""
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(token),
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
