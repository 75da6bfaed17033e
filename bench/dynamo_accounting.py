"""What DynamoDB is asked and what it would bill: calls, items returned, read and write request units.

Calls are counted with botocore's `before-call.dynamodb.*` event (one per API call, retries not
included) on the default boto3 session, so EVERY DynamoDB client the handlers create is seen — hangar's
`store.dynamo.client()` and anything else (Powertools idempotency, ...). botocore copies a session's
handlers into a client when the client is created, so `DynamoRecorder.installed()` registers first and
then drops hangar's cached clients.

Request units follow the published on-demand rules (approximately: item sizes are computed from the
stored attributes with DynamoDB's size rules):
- reads: a GetItem is ceil(size / 4 KB) units, halved when eventually consistent; a Query or Scan page
  is the summed size of the items it read, rounded up to 4 KB, halved when eventually consistent;
- writes: ceil(max(size before, size after) / 1 KB) per item written, doubled inside a transaction
  (a transaction's ConditionCheck costs the same as a write); every global secondary index an item
  enters, leaves or changes in costs one more write per entry (two when its index key changes: the old
  entry is deleted and a new one put). Index writes are counted at the standard rate.
Writes are measured by diffing every table before and after the request (the bench's tables are small).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

RawItem = dict[str, Any]
ItemKey = tuple[str, ...]
Snapshot = dict[str, dict[ItemKey, RawItem]]

READ_BLOCK_BYTES = 4096
WRITE_BLOCK_BYTES = 1024
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


@dataclass
class DynamoCall:
    """One DynamoDB API call: its operation, parameters, parsed response and time spent in it."""

    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def error_code(self) -> str | None:
        code = (self.response.get("Error") or {}).get("Code")
        return str(code) if code else None

    @property
    def items_read(self) -> int:
        """Items DynamoDB evaluated for this call (ScannedCount of a Query/Scan, 1 for a found GetItem)."""
        if self.operation in ("Query", "Scan"):
            return int(self.response.get("ScannedCount", self.response.get("Count", 0)))
        if self.operation == "GetItem":
            return 1 if self.response.get("Item") else 0
        return 0


class DynamoRecorder:
    """Records the DynamoDB calls made inside `recording()` by clients of the default boto3 session."""

    def __init__(self) -> None:
        self._calls: list[DynamoCall] | None = None

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[DynamoRecorder]:
        """Register on the default session (inside moto's mock, the mock's session) for the block's length."""
        from support import clear_client_caches

        recorder = cls()
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        handlers = (
            ("before-parameter-build.dynamodb.*", recorder._keep_params),
            ("before-call.dynamodb.*", recorder._count_call),
            ("after-call.dynamodb.*", recorder._keep_response),
        )
        for event, handler in handlers:
            session.events.register(event, handler)
        clear_client_caches()  # hangar's clients are created again, with the handlers above
        try:
            yield recorder
        finally:
            for event, handler in handlers:
                session.events.unregister(event, handler)
            clear_client_caches()

    @contextmanager
    def recording(self) -> Iterator[list[DynamoCall]]:
        """The calls made inside the block (the list fills as they happen)."""
        calls: list[DynamoCall] = []
        self._calls = calls
        try:
            yield calls
        finally:
            self._calls = None

    # botocore event handlers: `context` is one dict per API call, shared by its events.

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._calls is not None:
            context["bench_params"] = copy.deepcopy(params)

    def _count_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._calls is not None:
            call = DynamoCall(operation=model.name, params=context.get("bench_params", {}))
            self._calls.append(call)
            context["bench_call"] = call
            context["bench_started"] = time.perf_counter()

    def _keep_response(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("bench_call")
        if isinstance(call, DynamoCall):
            call.response = parsed
            call.seconds = time.perf_counter() - float(context["bench_started"])


# --- item sizes --------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a number: about one per two significant digits, plus one."""
    mantissa = text.lstrip("-").lower().split("e")[0].replace(".", "").strip("0")
    return (len(mantissa) + 1) // 2 + 1


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's JSON form ({"S": "..."}, {"N": "1"}, {"M": {...}}, ...)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in inner)
    if kind == "NS":
        return sum(number_size(str(member)) for member in inner)
    if kind == "BS":
        return sum(len(member) for member in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(member) for member in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_value_size(member) for name, member in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in (item or {}).items())


def _blocks(size: int, block: int) -> int:
    return max(1, math.ceil(size / block))


# --- table schemas and snapshots ---------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSchema:
    name: str
    key_names: tuple[str, ...]
    projection: str  # KEYS_ONLY | INCLUDE | ALL
    non_key_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSchema:
    name: str
    key_names: tuple[str, ...]
    indexes: tuple[IndexSchema, ...] = ()

    def key_of(self, item: Mapping[str, Any]) -> ItemKey:
        return tuple(json.dumps(item[name], sort_keys=True) for name in self.key_names)

    def index_entry(self, item: RawItem | None, index: IndexSchema) -> RawItem | None:
        """What `index` holds for `item`: None when the item lacks an index key (sparse index)."""
        if item is None or any(name not in item for name in index.key_names):
            return None
        if index.projection == "ALL":
            return dict(item)
        names = set(self.key_names) | set(index.key_names)
        if index.projection == "INCLUDE":
            names |= set(index.non_key_names)
        return {name: value for name, value in item.items() if name in names}


def table_schemas(dynamodb: Any) -> dict[str, TableSchema]:
    """Every table's key and global secondary indexes, as DynamoDB describes them."""
    schemas: dict[str, TableSchema] = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        indexes = tuple(
            IndexSchema(
                name=index["IndexName"],
                key_names=tuple(part["AttributeName"] for part in index["KeySchema"]),
                projection=index["Projection"]["ProjectionType"],
                non_key_names=tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in table.get("GlobalSecondaryIndexes", ())
        )
        schemas[name] = TableSchema(name, tuple(part["AttributeName"] for part in table["KeySchema"]), indexes)
    return schemas


def snapshot(dynamodb: Any, schemas: Mapping[str, TableSchema]) -> Snapshot:
    """Every item of every table, by key (call it outside `recording()`: it is not the handler's work)."""
    found: Snapshot = {}
    for name, schema in schemas.items():
        items: dict[ItemKey, RawItem] = {}
        for page in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
            for item in page.get("Items", []):
                items[schema.key_of(item)] = item
        found[name] = items
    return found


# --- request units -----------------------------------------------------------------------------------


def read_units(call: DynamoCall) -> float:
    """Read request units of one call, from what it returned."""
    params, response = call.params, call.response
    half = 1.0 if params.get("ConsistentRead") else 0.5
    if call.operation == "GetItem":
        return _blocks(item_size(response.get("Item")), READ_BLOCK_BYTES) * half
    if call.operation in ("Query", "Scan"):
        items = response.get("Items", [])
        size = sum(item_size(item) for item in items)
        if items and int(response.get("ScannedCount", 0)) > len(items):  # a filter dropped some it read
            size = size * int(response["ScannedCount"]) // len(items)
        return _blocks(size, READ_BLOCK_BYTES) * half
    if call.operation == "TransactGetItems":
        return sum(2.0 * _blocks(item_size(got.get("Item")), READ_BLOCK_BYTES) for got in response.get("Responses", []))
    return 0.0


@dataclass(frozen=True)
class WriteUnits:
    table: float = 0.0
    index: float = 0.0

    @property
    def total(self) -> float:
        return self.table + self.index


Target = tuple[str, ItemKey]  # (table name, item key)


def _transaction_targets(
    calls: list[DynamoCall], schemas: Mapping[str, TableSchema]
) -> tuple[set[Target], list[Target]]:
    """(table, key) of every item a transaction wrote, and of every ConditionCheck it made."""
    written: set[Target] = set()
    checked: list[Target] = []
    for call in calls:
        if call.operation != "TransactWriteItems" or call.error_code:
            continue
        for operation in call.params.get("TransactItems", []):
            ((kind, body),) = operation.items()
            schema = schemas[body["TableName"]]
            target = (schema.name, schema.key_of(body.get("Key") or body["Item"]))
            if kind == "ConditionCheck":
                checked.append(target)
            else:
                written.add(target)
    return written, checked


def _index_writes(before: RawItem | None, after: RawItem | None, index: IndexSchema) -> int:
    if before == after:
        return 0
    if before is None or after is None:
        return _blocks(item_size(before or after), WRITE_BLOCK_BYTES)
    if any(before[name] != after[name] for name in index.key_names):
        return _blocks(item_size(before), WRITE_BLOCK_BYTES) + _blocks(item_size(after), WRITE_BLOCK_BYTES)
    return _blocks(item_size(after), WRITE_BLOCK_BYTES)


def write_units(
    calls: list[DynamoCall], before: Snapshot, after: Snapshot, schemas: Mapping[str, TableSchema]
) -> WriteUnits:
    """Write request units of the calls, from the tables before and after them."""
    in_transaction, condition_checks = _transaction_targets(calls, schemas)
    table_units = 0.0
    index_units = 0.0
    for name, schema in schemas.items():
        old_items, new_items = before.get(name, {}), after.get(name, {})
        for key in old_items.keys() | new_items.keys():
            old, new = old_items.get(key), new_items.get(key)
            if old == new:
                continue
            factor = 2.0 if (name, key) in in_transaction else 1.0
            table_units += factor * _blocks(max(item_size(old), item_size(new)), WRITE_BLOCK_BYTES)
            for index in schema.indexes:
                index_units += _index_writes(schema.index_entry(old, index), schema.index_entry(new, index), index)
    for name, key in condition_checks:
        table_units += 2.0 * _blocks(item_size(before.get(name, {}).get(key)), WRITE_BLOCK_BYTES)
    for call in calls:  # a refused conditional write is billed too (for the item's current size)
        if call.operation in WRITE_OPERATIONS and call.error_code == "ConditionalCheckFailedException":
            schema = schemas[call.params["TableName"]]
            key = schema.key_of(call.params.get("Key") or call.params["Item"])
            table_units += _blocks(item_size(before.get(schema.name, {}).get(key)), WRITE_BLOCK_BYTES)
    return WriteUnits(table=table_units, index=index_units)
