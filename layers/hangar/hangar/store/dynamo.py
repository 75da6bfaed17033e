"""DynamoDB plumbing shared by the stores: one client, item (de)serialisation, cursors, and the outcomes
of conditional writes and transactions (what real, concurrent DynamoDB answers, classified once)."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

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
    params: dict[str, Any], cursor: str | None, key_names: set[str], partition: tuple[str, str], sk_prefix: str = ""
) -> tuple[list[Item], str | None]:
    """One page of a Query (params carry Limit) from `cursor`, and the cursor of the next page."""
    start = decode_cursor(cursor, key_names, partition, sk_prefix)
    if start is not None:
        params = {**params, "ExclusiveStartKey": start}
    response = client().query(**params)
    items = [item for item in (from_item(raw) for raw in response.get("Items", [])) if item is not None]
    return items, encode_cursor(response.get("LastEvaluatedKey"))


# --- outcomes of conditional writes and transactions -------------------------------------------------
#
# Real DynamoDB runs requests concurrently, so a write can fail for reasons moto never produces: a
# transaction is cancelled by a concurrent one (TransactionConflict, which returns no item, like a
# condition failing on an item that does not exist), a single write conflicts with a transaction in
# flight (TransactionConflictException), and a response can be lost after the write committed. This is
# the one place that tells those apart; the domain reads outcomes, never botocore errors.


class Outcome(Enum):
    OK = "ok"
    CONDITION_FAILED = "condition_failed"  # the condition was false on the item, which comes back (ALL_OLD)
    ITEM_MISSING = "item_missing"  # the condition was false because the item does not exist
    CONFLICT = "conflict"  # a concurrent transaction or write touched the item: nothing was decided
    THROTTLED = "throttled"
    OTHER = "other"  # validation, size limits, ...: a defect, never retried


_REASON_OUTCOMES = {
    "None": Outcome.OK,
    "ConditionalCheckFailed": Outcome.CONDITION_FAILED,
    "TransactionConflict": Outcome.CONFLICT,
    "ThrottlingError": Outcome.THROTTLED,
    "ProvisionedThroughputExceeded": Outcome.THROTTLED,
    "RequestLimitExceeded": Outcome.THROTTLED,
}
# What a retry can cure: the same conditions evaluated again, a moment later.
RETRYABLE = frozenset({Outcome.CONFLICT, Outcome.THROTTLED})


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one operation of a transaction (or to a single conditional write)."""

    outcome: Outcome
    item: Item | None = None  # the item as it was, when its condition failed on it

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def condition_failed(self) -> bool:
        """The condition was false: on `item`, or because there is no item (`missing`)."""
        return self.outcome in (Outcome.CONDITION_FAILED, Outcome.ITEM_MISSING)

    @property
    def missing(self) -> bool:
        return self.outcome is Outcome.ITEM_MISSING

    @property
    def conflict(self) -> bool:
        return self.outcome in RETRYABLE


def _reason_outcome(reason: Mapping[str, Any]) -> ItemOutcome:
    outcome = _REASON_OUTCOMES.get(str(reason.get("Code")), Outcome.OTHER)
    item = from_item(reason.get("Item"))
    if outcome is Outcome.CONDITION_FAILED and item is None:
        # Every conditional operation asks for the item (see `_asking_for_the_item`), so no item means none.
        outcome = Outcome.ITEM_MISSING
    return ItemOutcome(outcome, item)


class TransactionCancelled(Exception):
    """A TransactWriteItems that wrote nothing, with the outcome of each operation by its name."""

    def __init__(self, outcomes: dict[str, ItemOutcome]) -> None:
        super().__init__(", ".join(f"{name}: {o.outcome.value}" for name, o in outcomes.items() if not o.ok))
        self.outcomes = outcomes

    def __getitem__(self, name: str) -> ItemOutcome:
        return self.outcomes[name]

    @property
    def conflict(self) -> bool:
        """Cancelled only because of concurrent requests or throttling (no condition said no)."""
        failed = [o for o in self.outcomes.values() if not o.ok]
        return bool(failed) and all(o.conflict for o in failed)


class OutcomeUnknown(Exception):
    """A write whose response never arrived, even after replaying it: it may or may not have happened."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


# Backoff between attempts: full jitter over an exponentially growing window (AWS's advice for
# conflicts), small because the competing request usually finishes within milliseconds.
CONFLICT_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.2


def backoff(attempt: int) -> None:
    window = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    time.sleep(random.uniform(0, window))  # noqa: S311 - jitter, not cryptography


def _asking_for_the_item(operation: Mapping[str, Any]) -> dict[str, Any]:
    """The operation, asking for the item whenever its condition fails: then "no item" reliably means
    that the item does not exist, and the domain learns why a condition failed without a read."""
    (kind, params), *_ = operation.items()
    if "ConditionExpression" in params and kind in ("Put", "Update", "Delete", "ConditionCheck"):
        params = {**params, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    return {kind: params}


# A write whose response is lost is replayed with the same ClientRequestToken this many times (each with
# botocore's own retries inside): DynamoDB answers a replay of a committed transaction with success and
# changes nothing, and runs a cancelled one anew, so a replay can only learn the outcome, never repeat it.
REPLAYS = 3
_AMBIGUOUS_CODES = frozenset(
    {"InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "RequestTimeout"}
)


def _ambiguous(error: Exception) -> bool:
    """An error after which the write may have happened: its response was lost or the service failed."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(error) in _AMBIGUOUS_CODES or status >= 500
    return isinstance(error, BotoConnectionError | HTTPClientError)


def _commit(items: list[dict[str, Any]], names: list[str]) -> None:
    """One transaction under one ClientRequestToken, replayed while its outcome is unknown."""
    token = str(uuid.uuid4())
    for replay in range(REPLAYS + 1):
        try:
            client().transact_write_items(TransactItems=items, ClientRequestToken=token)
            return
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                reasons: Any = error.response.get("CancellationReasons") or [{}] * len(names)
                raise TransactionCancelled(
                    {name: _reason_outcome(reason) for name, reason in zip(names, reasons, strict=True)}
                ) from None
            if not _ambiguous(error):
                raise
            if replay == REPLAYS:
                raise OutcomeUnknown(f"transaction {token}: {error_code(error)}") from error
        except (BotoConnectionError, HTTPClientError) as error:
            if replay == REPLAYS:
                raise OutcomeUnknown(f"transaction {token}: {error}") from error
        backoff(replay)


def transact(operations: Mapping[str, dict[str, Any]]) -> None:
    """One TransactWriteItems: all of the named operations happen, or none and TransactionCancelled says
    what each operation's condition found (`cancelled["runner"].missing`, ...).

    A cancellation caused only by concurrent requests or throttling is retried with jittered backoff, so
    that the conditions decide; when it keeps happening the last TransactionCancelled is raised. Every
    attempt carries a ClientRequestToken, replayed when a response is lost (see `_commit`)."""
    names = list(operations)
    items = [_asking_for_the_item(operation) for operation in operations.values()]
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            _commit(items, names)
            return
        except TransactionCancelled as cancelled:
            if not cancelled.conflict or attempt + 1 == CONFLICT_ATTEMPTS:
                raise
        backoff(attempt)


def update(params: dict[str, Any], return_new: bool = True) -> tuple[bool, Item | None]:
    """One conditional UpdateItem: (True, the item after it — None unless `return_new`), or (False, the
    item as it was when the condition failed — None when there is no item)."""
    try:
        response = client().update_item(
            **{
                **params,
                "ReturnValues": "ALL_NEW" if return_new else "NONE",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        return False, from_item(error.response.get("Item"))  # type: ignore[arg-type]
    return True, from_item(response.get("Attributes"))


def update_if(**params: Any) -> Item | None:
    """A conditional UpdateItem: the item as it is after the update, or None when the condition refused it."""
    written, item = update(params)
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


def put_new_with(table: str, item: Item, key_name: str, also: Mapping[str, dict[str, Any]]) -> None:
    """put_new in ONE transaction with the `also` operations (a user's change and its audit event): both
    are written or neither. A lost response is replayed under the same ClientRequestToken (`transact`),
    so a retry never finds its own first attempt as a collision."""
    try:
        transact({"item": put_new_op(table, item, key_name), **also})
    except TransactionCancelled as cancelled:
        if cancelled["item"].condition_failed:
            raise ItemExists(key_name) from None
        raise


# --- single writes that meet a transaction in flight ---------------------------------------------------

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
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempts))  # noqa: S311
