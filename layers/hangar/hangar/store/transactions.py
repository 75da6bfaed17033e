"""Transactions and their outcomes: what real, concurrent DynamoDB answers to a TransactWriteItems,
classified once, so that the domain reads outcomes (`cancelled["runner"].missing`), never botocore errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from hangar.store.dynamo import Item, ItemExists, backoff, client, error_code, from_item, put_new_op

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


# A transaction cancelled only by conflicts or throttling is attempted this many times in all.
CONFLICT_ATTEMPTS = 6


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


def put_new_with(table: str, item: Item, key_name: str, also: Mapping[str, dict[str, Any]]) -> None:
    """A new item (`put_new_op`) in ONE transaction with the `also` operations (a user's change and its
    audit event): both are written or neither. A lost response is replayed under the same
    ClientRequestToken (`transact`), so a retry never finds its own first attempt as a collision."""
    try:
        transact({"item": put_new_op(table, item, key_name), **also})
    except TransactionCancelled as cancelled:
        if cancelled["item"].condition_failed:
            raise ItemExists(key_name) from None
        raise
