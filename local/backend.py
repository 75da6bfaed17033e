"""The embedded AWS backend: moto's server (DynamoDB, S3, KMS, Secrets Manager, API Gateway keys and
usage plans, all on one endpoint), served by waitress with keep-alive.

`make run` runs it in a child process (`python -m local backend --fd N` on a socket the parent bound),
so moto and the handlers each get a core; the child exits when the parent's pipe on its stdin closes.
`SerialMotoServer` runs the same in a thread of this process (tests/integration use it).

moto's backends take no locks, so two requests racing through a conditional write could both succeed
where DynamoDB lets only one: requests are served on many threads but go through moto one at a time,
so each call is atomic, as it is in DynamoDB.
"""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from local.http import serve_wsgi, wsgi_server
from local.s3_signatures import verify_s3_requests
from local.transaction_tokens import MISMATCH_MESSAGE, Replay, TransactionTokens

# The credentials every local client signs with (local.server.aws_environment).
LOCAL_CREDENTIALS = {"testing": "testing"}

ADMIN_PATH = "/_local/api-key-ids"
"""POST {"value", "id"}: the next API key created with that value gets that id (restoring tenants)."""
CLOCK_PATH = "/_local/clock-offset"
"""POST {"offsetSeconds"}: SQS's clock (message delays, visibility timeouts) runs that far ahead, as the
local clock of `POST /_local/clock` does (hangar.core.clock), so queued retries come due when time is moved."""

_clock_offset_seconds = 0.0


def follow_local_clock() -> None:
    """moto's SQS reads the time through these two functions; shift them by the local clock's offset."""
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time, unix_time_millis

    setattr(sqs_models, "unix_time", lambda *args: unix_time(*args) + _clock_offset_seconds)  # noqa: B010
    setattr(sqs_models, "unix_time_millis", lambda *args: unix_time_millis(*args) + _clock_offset_seconds * 1000)  # noqa: B010


def keep_stream_iterators_current() -> None:
    """moto restores a table from a copy when a transaction on it is cancelled, stream shard included,
    while its stream iterators keep reading the shard they were made on: every record written after the
    first cancelled transaction would be invisible to them. Each read here looks the table's current
    shard up, and drops the iterator it used (local/ never reads one twice; each read makes the next)."""
    from moto.dynamodbstreams.models import ShardIterator

    read = ShardIterator.get

    def get_from_current_shard(self: Any, limit: int = 1000) -> dict[str, Any]:
        current = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        if current is not None and current.stream_shard is not None:
            self.stream_shard = current.stream_shard
        self.streams_backend.shard_iterators.pop(self.arn, None)
        result: dict[str, Any] = read(self, limit)
        return result

    ShardIterator.get = get_from_current_shard  # type: ignore[method-assign]

    # The copy moto takes of every table a transaction writes would copy each stream record too, so every
    # transaction would get slower as the stream grows. Records never change once written: the copy of a
    # shard gets a copy of the list of records, sharing the records themselves.
    from moto.dynamodb.models.table import StreamShard

    def copy_shard(self: Any, memo: dict[int, Any]) -> Any:
        copied = StreamShard.__new__(StreamShard)
        memo[id(self)] = copied
        copied.__dict__.update(self.__dict__)
        copied.items = list(self.items)  # type: ignore[attr-defined]
        copied.table = copy.deepcopy(self.table, memo)  # type: ignore[attr-defined]
        return copied

    StreamShard.__deepcopy__ = copy_shard  # type: ignore[attr-defined]


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


def backend_app() -> Callable[..., Iterable[bytes]]:
    from moto.apigateway.utils import ApigwApiKeyIdentifier
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.utilities.id_generator import moto_id_manager

    from local.template import ACCOUNT_ID, REGION

    # S3's checks of presigned URLs and anonymous requests, which moto does not make.
    moto = verify_s3_requests(DomainDispatcherApplication(create_backend_app), LOCAL_CREDENTIALS)
    lock = threading.Lock()
    follow_local_clock()
    keep_stream_iterators_current()
    speed_up_moto()
    tokens = TransactionTokens(now=lambda: time.time() + _clock_offset_seconds)

    def moto_answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        result = moto(environ, start_response)
        try:
            return list(result)
        finally:
            getattr(result, "close", lambda: None)()

    def transact_write(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Runs under the lock, so a retry that queued behind its own first attempt (the case a read
        timeout under load produces) finds that attempt's token remembered."""
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        body = json.loads(raw or b"{}")
        replay = tokens.replay(body)
        if replay is Replay.SUCCEEDED:
            return _json_answer(start_response, "200 OK", {})
        if replay is Replay.MISMATCH:
            mismatch = "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            return _json_answer(start_response, "400 Bad Request", {"__type": mismatch, "message": MISMATCH_MESSAGE})
        environ["wsgi.input"] = io.BytesIO(raw)
        statuses: list[str] = []

        def record_status(status: str, headers: Any, *rest: Any) -> Any:
            statuses.append(status)
            return start_response(status, headers, *rest)

        answer = moto_answer(environ, record_status)
        if statuses and statuses[0].startswith("200"):
            tokens.committed(body)
        return answer

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        global _clock_offset_seconds
        if environ.get("PATH_INFO") == CLOCK_PATH:
            wanted = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            _clock_offset_seconds = float(wanted["offsetSeconds"])
            start_response("204 No Content", [])
            return []
        if environ.get("PATH_INFO") == ADMIN_PATH:
            wanted = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            identifier = ApigwApiKeyIdentifier(ACCOUNT_ID, REGION, str(wanted["value"]))
            moto_id_manager.set_custom_id(identifier, str(wanted["id"]))
            start_response("204 No Content", [])
            return []
        with lock:  # the whole answer is produced under the lock
            if environ.get("HTTP_X_AMZ_TARGET") == "DynamoDB_20120810.TransactWriteItems":
                return transact_write(environ, start_response)
            return moto_answer(environ, start_response)

    return app


def _json_answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    start_response(status, [("Content-Type", "application/x-amz-json-1.0")])
    return [json.dumps(body).encode()]


def run_child(fd: int) -> int:
    """The child process: serve on the inherited socket until the parent goes away (stdin closes).
    Ctrl-C in `make run` reaches the whole process group: the parent decides when the child stops."""
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = wsgi_server(backend_app(), socket.socket(fileno=fd))
    threading.Thread(target=_exit_when_the_parent_leaves, name="parent-watch", daemon=True).start()
    serve_wsgi(server)
    return 0


def _exit_when_the_parent_leaves() -> None:
    """Exit at once when stdin closes. Closing the listening socket is not enough: the parent's keep-alive
    connections (every boto3 client's pool) keep waitress serving until the parent's 5 s wait runs out
    and kills the child, 5 s of every stop. The tables are in memory: nothing is left to write."""
    sys.stdin.buffer.read()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class SerialMotoServer:
    """The backend in a thread of this process, on a free port unless one is given."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.create_server((ip_address, port))
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._server = wsgi_server(backend_app(), self._socket)
        threading.Thread(target=serve_wsgi, args=(self._server,), name="moto", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
