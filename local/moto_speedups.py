"""Patches that make moto cost what a request touches, not what the tables and queues hold, and a KMS key
what Hangar uses of it: `speed_up_moto` applies them all (idempotent). The embedded backend
(`local.backend`) and the tests' in-process moto (`tests/support.py`) use it;
`tests/unit/test_local_moto_speedups.py` checks each answers what moto's own code answers. They patch
the pinned moto's internals: a moto upgrade re-runs those tests."""

from __future__ import annotations

import copy
import threading
from typing import Any


def snapshot_only_what_a_transaction_writes() -> None:
    """moto keeps a deep copy of every table a TransactWriteItems names, to restore if it is cancelled:
    each transaction costs as much as the table holds, and a test server's tables only grow. The copy
    taken here shares every item the transaction does not write (it never changes them) and copies the
    ones it does, so a cancelled transaction restores the same state at the cost of what it touches."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import StreamShard, Table

    if getattr(Table, "_hangar_snapshots", False):
        return
    running = threading.local()  # .written: table name -> the keys the transaction of this thread writes

    def deepcopy_table(self: Any, memo: dict[int, Any]) -> Any:
        copied: Any = Table.__new__(Table)
        memo[id(self)] = copied
        keys = getattr(running, "written", {}).get(self.name)
        if keys is None:  # any other copy (backups, restores): all of it, as copy.deepcopy does
            copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
            return copied
        copied.__dict__.update(self.__dict__)
        items = type(self.items)(self.items.default_factory)  # the outer dict: writes may add a hash key
        items.update(self.items)
        for hash_value, range_value in keys:
            if hash_value not in items:
                continue
            if range_value is None:  # a table without a sort key: hash -> item
                items[hash_value] = copy.deepcopy(self.items[hash_value], memo)
                continue
            if items[hash_value] is self.items[hash_value]:  # a partition: sort key -> item, copied once
                items[hash_value] = dict(self.items[hash_value])
            if range_value in items[hash_value]:
                items[hash_value][range_value] = copy.deepcopy(self.items[hash_value][range_value], memo)
        copied.items = items
        if self.stream_shard is not None:
            shard: Any = StreamShard.__new__(StreamShard)
            shard.__dict__.update(self.stream_shard.__dict__)
            shard.items = list(self.stream_shard.items)  # records never change once written
            shard.table = copied
            copied.stream_shard = shard
        return copied

    transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        written: dict[str, set[tuple[Any, Any]]] = {}
        try:
            for item in transact_items:
                _, operation = next(iter(item.items()))
                table = self.tables.get(operation.get("TableName"))
                if table is None:
                    continue
                key = operation.get("Key") or operation.get("Item") or {}
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                written.setdefault(table.name, set()).add((DynamoType(key[table.hash_key_attr]), range_value))
        except (KeyError, TypeError, AttributeError, StopIteration):
            written = {}  # moto refuses the request: let it copy everything as it would
        running.written = written
        try:
            transact(self, transact_items)
        finally:
            running.written = {}

    Table.__deepcopy__ = deepcopy_table  # type: ignore[attr-defined]
    Table._hangar_snapshots = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


_ATTRIBUTE_STRINGS = ("S", "N")
_ATTRIBUTE_BOOLEANS = ("BOOL", "NULL")
_ATTRIBUTE_STRING_SETS = ("SS", "NS")


def _plain_attribute_value(value: Any) -> dict[str, Any] | None:
    """A DynamoDB attribute value as moto's JSON serializer writes it, for the common types only (None:
    let the serializer do it). That serializer walks the AttributeValue shape member by member, with
    several name look-ups each, for every attribute of every item it returns."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in _ATTRIBUTE_STRINGS and type(inner) is str:
        return {kind: inner}
    if kind in _ATTRIBUTE_BOOLEANS and type(inner) is bool:
        return {kind: inner}
    if kind in _ATTRIBUTE_STRING_SETS and type(inner) is list and all(type(part) is str for part in inner):
        return {kind: list(inner)}
    if kind == "M" and type(inner) is dict:
        members = {}
        for name, member in inner.items():
            plain = _plain_attribute_value(member)
            if plain is None or type(name) is not str:
                return None
            members[name] = plain
        return {"M": members}
    if kind == "L" and type(inner) is list:
        elements = []
        for element in inner:
            plain = _plain_attribute_value(element)
            if plain is None:
                return None
            elements.append(plain)
        return {"L": elements}
    return None


def serialize_attribute_values_directly() -> None:
    """moto's JSON serializer, with `_plain_attribute_value` first for DynamoDB's AttributeValue."""
    from moto.core.serialize import BaseJSONSerializer

    serialize_structure = BaseJSONSerializer._serialize_type_structure
    if getattr(serialize_structure, "_hangar_direct", False):
        return

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue":
            plain = _plain_attribute_value(value)
            if plain is not None:
                serialized[key] = plain
                return
        serialize_structure(self, serialized, value, shape, key)

    _serialize_type_structure._hangar_direct = True  # type: ignore[attr-defined]
    _serialize_type_structure.__wrapped__ = serialize_structure  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


def check_retention_directly() -> None:
    """moto's SQS checks each message it receives against the queue's retention period by computing all
    the queue's attributes, its message counts included (a pass over the queue each): a receive cost what
    the queue holds, times ten. Here it reads the one attribute it needs."""
    import moto.sqs.models as sqs_models

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        now = getattr(sqs_models, "unix_time")()  # noqa: B009 - follow_local_clock may have replaced it
        return bool(retention_period + message.sent_timestamp / 1000 > now)

    backend = sqs_models.SQSBackend
    backend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def query_only_the_partition() -> None:
    """moto answers a query on a table's key by sorting every item of the table and keeping those of the
    partition asked for: each query cost what the whole table holds. Here it reads that partition alone
    (index queries are left as they are)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_hangar_partition_queries", False):
        return
    running = threading.local()  # .partition: (table, hash key) of this thread's query on a table's key
    all_items, query = Table.all_items, Table.query

    def partition_items(self: Any) -> Any:
        partition = getattr(running, "partition", None)
        if partition is None or partition[0] is not self:
            return all_items(self)
        found = self.items.get(partition[1])
        if found is None:
            return []
        items = list(found.values()) if self.range_key_attr else [found]
        return sorted(items, key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key)

    def query_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        running.partition = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            running.partition = None

    query_partition.__wrapped__ = query  # type: ignore[attr-defined]
    Table.all_items = partition_items  # type: ignore[method-assign]
    Table.query = query_partition  # type: ignore[method-assign]
    Table._hangar_partition_queries = True  # type: ignore[attr-defined]


def make_kms_private_keys_on_first_use() -> None:
    """moto makes an RSA-2048 private key for every KMS key, symmetric ones included (~70 ms, most of a
    test's KMS set-up). Here a key's private key is made when it is first read (Sign, Verify,
    GetPublicKey), from the same function; Hangar's keys are symmetric and never read it."""
    from moto.kms import models as kms_models
    from moto.kms.utils import generate_private_key as generate

    models: Any = kms_models  # patched below: attributes its stubs do not declare
    if getattr(models.Key, "_hangar_lazy_private_key", False):
        return
    not_yet = object()
    lock = threading.Lock()

    def private_key(self: Any) -> Any:
        with lock:
            if self.__dict__.get("_private_key", not_yet) is not_yet:
                self.__dict__["_private_key"] = generate(self.key_spec)
            return self.__dict__["_private_key"]

    def set_private_key(self: Any, value: Any) -> None:
        self.__dict__["_private_key"] = value

    models.generate_private_key = lambda key_spec: not_yet  # what Key.__init__ stores, until first read
    models.Key.private_key = property(private_key, set_private_key)
    models.Key._hangar_lazy_private_key = True


def speed_up_moto() -> None:
    """What makes moto's DynamoDB and SQS cost what the request does rather than what the tables and
    queues hold, and a KMS key what Hangar uses of it (idempotent; the embedded backend and the tests'
    in-process moto use it)."""
    snapshot_only_what_a_transaction_writes()
    serialize_attribute_values_directly()
    query_only_the_partition()
    check_retention_directly()
    make_kms_private_keys_on_first_use()
