"""The DynamoDB toolkit of the stores: one client, item (de)serialisation, the one expression builder
(`Update`, `condition_check_op`, `delete_op`), paging (boto3 paginators, and cursors for pages handed to
clients) and single conditional writes. Transactions and their outcomes: `hangar.store.transactions`."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from hangar.core.errors import BadRequest

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@lru_cache(maxsize=1)
def client() -> Any:
    """The process-wide DynamoDB client (thread-safe; the endpoint comes from AWS_ENDPOINT_URL* locally).

    Timeouts are short so that a lost response is retried well inside a function's 10 s: DynamoDB
    answers in milliseconds, and AWS advises at least 1 s per attempt for transactions."""
    dynamodb = boto3.client(
        "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=1, read_timeout=2)
    )
    dynamodb.meta.events.register("needs-retry.dynamodb", _retry_write_conflicts)  # type: ignore[arg-type]
    return dynamodb


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


# --- the expression builder: every UpdateItem, ConditionCheck and conditional Delete -------------------
#
# Expressions write every attribute name as `#name`; the builder maps the placeholders itself, so reserved
# words (status, error, result) need no care at the call sites. Values are plain Python (`Raw` for one
# already in DynamoDB's wire format) under `:name`.

_PLACEHOLDER = re.compile(r"#([A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Raw:
    """A value already in DynamoDB's wire format (e.g. a number read from an index, compared as read)."""

    value: dict[str, Any]


def _wire(value: Any) -> dict[str, Any]:
    return value.value if isinstance(value, Raw) else serialize(value)


def _names(expressions: list[str], names: dict[str, str]) -> dict[str, str]:
    """ExpressionAttributeNames: every `#name` standing for itself, unless `names` maps it (a map key)."""
    found = {name for expression in expressions for name in _PLACEHOLDER.findall(expression)}
    return {f"#{name}": names.get(name, name) for name in sorted(found)}


@dataclass
class Update:
    """One UpdateItem (alone, `apply`, or inside a transaction, `op`), built from plain Python values."""

    table: str
    key: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)
    set_expressions: list[str] = field(default_factory=list)  # e.g. "#queuedAt = #queueSortKey"
    add: dict[str, Any] = field(default_factory=dict)
    delete: dict[str, Any] = field(default_factory=dict)  # set members to remove
    remove: tuple[str, ...] = ()
    condition: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # for condition and set_expressions
    names: dict[str, str] = field(default_factory=dict)  # placeholders that do not stand for themselves

    def params(self) -> dict[str, Any]:
        clauses: list[str] = []
        vals: dict[str, Any] = {}
        sets = [f"#{name} = :set_{name}" for name in self.set] + list(self.set_expressions)
        vals.update({f":set_{name}": value for name, value in self.set.items()})
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if self.add:
            clauses.append("ADD " + ", ".join(f"#{name} :add_{name}" for name in self.add))
            vals.update({f":add_{name}": value for name, value in self.add.items()})
        if self.delete:
            clauses.append("DELETE " + ", ".join(f"#{name} :del_{name}" for name in self.delete))
            vals.update({f":del_{name}": value for name, value in self.delete.items()})
        if self.remove:
            clauses.append("REMOVE " + ", ".join(f"#{name}" for name in self.remove))
        vals.update({f":{name}": value for name, value in self.values.items()})
        expression = " ".join(clauses)
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key,
            "UpdateExpression": expression,
            "ExpressionAttributeNames": _names([expression, self.condition or ""], self.names),
        }
        if vals:
            params["ExpressionAttributeValues"] = {name: _wire(value) for name, value in vals.items()}
        if self.condition:
            params["ConditionExpression"] = self.condition
        return params

    def op(self) -> dict[str, Any]:
        return {"Update": self.params()}


def _keyed_op(kind: str, table: str, key: dict[str, Any], condition: str, vals: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"TableName": table, "Key": key, "ConditionExpression": condition}
    names = _names([condition], {})
    if names:
        params["ExpressionAttributeNames"] = names
    if vals:
        params["ExpressionAttributeValues"] = {f":{name}": _wire(value) for name, value in vals.items()}
    return {kind: params}


def condition_check_op(table: str, key: dict[str, Any], condition: str, vals: Mapping[str, Any]) -> dict[str, Any]:
    """A TransactWriteItems ConditionCheck of one item under `condition` (`#name`, `:name` placeholders)."""
    return _keyed_op("ConditionCheck", table, key, condition, vals)


def delete_op(table: str, key: dict[str, Any], condition: str, vals: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A TransactWriteItems Delete of one item under `condition` (`#name`, `:name` placeholders)."""
    return _keyed_op("Delete", table, key, condition, vals or {})


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = from_item(last_key)
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


# DynamoDB's limit on a sort key (and well under a partition key's): a longer value is no key we issued.
MAX_KEY_BYTES = 1024


def _is_key_string(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return len(value.encode()) <= MAX_KEY_BYTES
    except UnicodeEncodeError:  # a lone surrogate: DynamoDB strings are UTF-8
        return False


def decode_cursor(
    cursor: str | None, key_names: set[str], partition: tuple[str, str] | None = None, sk_prefix: str = ""
) -> dict[str, Any] | None:
    """The ExclusiveStartKey a cursor stands for. Every key Hangar pages on is a string, and a cursor
    holds exactly the key of the list it came from (`key_names`: the table's key, plus the index's for
    an index), so a cursor we did not issue — a subset of the key, a number where the key is a string,
    or one issued for another tenant's list (`partition` = (key name, value)) — is a 400 naming `cursor`
    before DynamoDB sees it."""
    if not cursor:
        return None
    refused = BadRequest("cursor is not a cursor this API issued", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise refused from None
    if not isinstance(plain, dict) or set(plain) != key_names:
        raise refused
    if not all(_is_key_string(value) for value in plain.values()):
        raise refused
    if partition is not None and plain.get(partition[0]) != partition[1]:
        raise refused
    if sk_prefix and not str(plain.get("sk", "")).startswith(sk_prefix):
        raise refused
    return to_item(plain)


def query_page(
    params: dict[str, Any],
    cursor: str | None,
    key_names: set[str],
    partition: tuple[str, str],
    sk_prefix: str = "",
    max_reads: int = 1,
) -> tuple[list[Item], str | None]:
    """One page for a client (at most `Limit` items, params carry it) from `cursor`, and the cursor of the
    next page. With a FilterExpression, up to `max_reads` Queries fill the page while the filter drops
    items; a read that finds more than the page needs ends the page at its last item."""
    limit = int(params["Limit"])
    start = decode_cursor(cursor, key_names, partition, sk_prefix)
    if start is not None:
        params = {**params, "ExclusiveStartKey": start}
    raws: list[dict[str, Any]] = []
    last_key: dict[str, Any] | None = None
    for _ in range(max_reads):
        response = client().query(**params)
        page = response.get("Items", [])
        wanted = limit - len(raws)
        if len(page) > wanted:
            raws.extend(page[:wanted])
            last_key = {name: raws[-1][name] for name in key_names}
            break
        raws.extend(page)
        last_key = response.get("LastEvaluatedKey")
        if last_key is None or len(raws) == limit:
            break
        params = {**params, "ExclusiveStartKey": last_key}
    return [item for item in map(from_item, raws) if item is not None], encode_cursor(last_key)


# --- paging ------------------------------------------------------------------------------------------


def query_pages(params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """The pages of a Query (`Limit` in params sets their size) as DynamoDB sends them, read lazily to the
    end by boto3's paginator: the caller stops reading when it has what it needs."""
    for page in client().get_paginator("query").paginate(**params):
        yield page.get("Items", [])


def query_all(params: dict[str, Any]) -> list[Item]:
    """Every item a Query finds, every page."""
    return [item for page in query_pages(params) for item in map(from_item, page) if item is not None]


# --- single conditional writes ----------------------------------------------------------------------------


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def apply(update: Update, return_new: bool = True) -> tuple[bool, Item | None]:
    """Runs one UpdateItem: (True, the item after it — None unless `return_new`), or, when its condition
    fails, (False, the item as it was — None when there is no item)."""
    try:
        response = client().update_item(
            **update.params(),
            ReturnValues="ALL_NEW" if return_new else "NONE",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        return False, from_item(error.response.get("Item"))  # type: ignore[arg-type]
    return True, from_item(response.get("Attributes"))


def apply_if(update: Update) -> Item | None:
    """Runs one UpdateItem: the item as it is after it, or None when its condition refused it."""
    written, item = apply(update)
    return item if written else None


class ItemExists(Exception):
    """put_new found another item under the key."""


def put_new(table: str, item: Item, key_name: str) -> None:
    """Stores a new item unless one exists under its key (ids are random: a collision fails, never
    replaces). A write whose response was lost is retried by botocore and then finds itself: the item
    it finds equal to the one it writes is its own first attempt, so that is success, not a collision."""
    try:
        client().put_item(
            TableName=table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": key_name},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        if from_item(error.response.get("Item")) != from_item(to_item(item)):  # type: ignore[arg-type]
            raise ItemExists(key_name) from None


def put_new_op(table: str, item: Item, key_name: str) -> dict[str, Any]:
    """A TransactWriteItems Put of a new item, refused when one exists under its key."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(#key)",
            "ExpressionAttributeNames": {"#key": key_name},
        }
    }


# --- retries: backoff, and single writes that meet a transaction in flight --------------------------------

# Backoff between attempts: full jitter over an exponentially growing window (AWS's advice for
# conflicts), small because the competing request usually finishes within milliseconds.
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.2


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, _backoff_window(attempt)))  # noqa: S311 - jitter, not cryptography


def _backoff_window(attempt: int) -> float:
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)


# botocore retries throttling and transient errors, but not TransactionConflictException: a PutItem,
# UpdateItem or DeleteItem of an item a transaction is writing at that moment. It is retried here, on
# every request of hangar's client (Powertools' idempotency records included).
WRITE_CONFLICT_ATTEMPTS = 6


def _retry_write_conflicts(attempts: int, response: Any = None, **_: Any) -> float | None:
    if response is None or attempts >= WRITE_CONFLICT_ATTEMPTS:
        return None
    code = (response[1] or {}).get("Error", {}).get("Code")
    if code != "TransactionConflictException":
        return None
    return random.uniform(0, _backoff_window(attempts))  # noqa: S311
