"""DynamoDB plumbing shared by the stores: one client, item (de)serialisation, cursors, transactions."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from hangar.errors import BadRequest

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@lru_cache(maxsize=1)
def client() -> Any:
    """The process-wide DynamoDB client (thread-safe; the endpoint comes from AWS_ENDPOINT_URL* locally)."""
    return boto3.client(
        "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)
    )


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo_value(v) for v in value)
    return value


def serialize(value: Any) -> dict[str, Any]:
    result: Any = _serializer.serialize(_to_dynamo_value(value))
    return dict(result)


def to_item(data: Item) -> dict[str, Any]:
    """A plain dict as a DynamoDB item; None values are left out (absent attributes keep indexes sparse)."""
    return {key: serialize(value) for key, value in data.items() if value is not None}


def from_item(item: dict[str, Any] | None) -> Item | None:
    if item is None:
        return None
    return {key: _from_dynamo_value(_deserializer.deserialize(value)) for key, value in item.items()}


def values(**kwargs: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(limit=3) -> {':limit': {'N': '3'}}."""
    return {f":{key}": serialize(value) for key, value in kwargs.items()}


def update_expression(
    set_fields: dict[str, Any], remove_fields: tuple[str, ...] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """An UpdateExpression (SET/REMOVE) with placeholder names, so any attribute name is safe."""
    names: dict[str, str] = {}
    vals: dict[str, Any] = {}
    sets = []
    for index, (name, value) in enumerate(set_fields.items()):
        names[f"#s{index}"] = name
        vals[f":s{index}"] = serialize(value)
        sets.append(f"#s{index} = :s{index}")
    removes = []
    for index, name in enumerate(remove_fields):
        names[f"#r{index}"] = name
        removes.append(f"#r{index}")
    expression = ""
    if sets:
        expression += "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return expression.strip(), names, vals


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = from_item(last_key)
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, key_names: set[str], partition: tuple[str, str] | None = None, sk_prefix: str = ""
) -> dict[str, Any] | None:
    """The ExclusiveStartKey a cursor stands for; a cursor we did not issue — or one issued for another
    tenant's list (`partition` = (key name, value)) — is a 400 naming `cursor`."""
    if not cursor:
        return None
    refused = BadRequest("cursor is not a cursor this API issued", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not isinstance(plain, dict) or not plain or not set(plain) <= key_names:
        raise refused
    if not all(isinstance(v, str | int) for v in plain.values()):
        raise refused
    if partition is not None and plain.get(partition[0]) != partition[1]:
        raise refused
    if sk_prefix and not str(plain.get("sk", "")).startswith(sk_prefix):
        raise refused
    return to_item(plain)


def query_page(
    params: dict[str, Any], cursor: str | None, key_names: set[str], partition: tuple[str, str], sk_prefix: str = ""
) -> tuple[list[Item], str | None]:
    """One page of a Query (params carry Limit) from `cursor`, and the cursor of the next page."""
    start = decode_cursor(cursor, key_names, partition, sk_prefix)
    if start is not None:
        params = {**params, "ExclusiveStartKey": start}
    response = client().query(**params)
    items = [item for item in (from_item(raw) for raw in response.get("Items", [])) if item is not None]
    return items, encode_cursor(response.get("LastEvaluatedKey"))


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """Per-item reasons of a cancelled TransactWriteItems (same order as the request)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise error
    reasons: Any = error.response.get("CancellationReasons", [])
    return list(reasons)


def reason_failed(reason: dict[str, Any]) -> bool:
    return reason.get("Code") not in (None, "None")


def reason_item(reason: dict[str, Any]) -> Item | None:
    return from_item(reason.get("Item"))


def update_if(**params: Any) -> Item | None:
    """A conditional UpdateItem: the item as it is after the update, or None when the condition refused it."""
    try:
        response = client().update_item(**params, ReturnValues="ALL_NEW")
    except ClientError as error:
        if is_condition_failure(error):
            return None
        raise
    return from_item(response.get("Attributes"))


def transact(operations: list[dict[str, Any]]) -> None:
    """One TransactWriteItems call: all of the operations happen, or none."""
    client().transact_write_items(TransactItems=operations)
