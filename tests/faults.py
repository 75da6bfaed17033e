"""Fault injection for hangar's DynamoDB client (test-only; imported as `faults`).

moto answers one call at a time and never fails the way a real, concurrent DynamoDB does. `DynamoFaults`
sits where moto (or an HTTP endpoint) answers hangar's client — botocore's `before-send`, below the
client's retries — and makes chosen calls answer as DynamoDB would under load or contention:

- `Conflict()`: the transaction is cancelled because another one touched an item (`TransactionConflict`
  on the chosen operations, `None` on the others, no item returned), or a single write meets a
  transaction in flight (`TransactionConflictException`). Nothing is written.
- `Throttled()`: `ProvisionedThroughputExceededException` (or `ThrottlingException`). Nothing is written.
- `ConditionFailed(with_item)`: the transaction is cancelled with `ConditionalCheckFailed` on the chosen
  operations, with the item as stored now or without it. Fabricated: only truthful where the stored
  item really fails the condition (or is really absent); `Race` makes a real one.
- `Race(action)`: `action()` runs just before the call reaches DynamoDB (a concurrent request that gets
  there first), with faults off; the call then meets its effects, conditions and all.
- `LostResponse()`: the call reaches DynamoDB and commits, then its response is lost (a read timeout).
- `Crash()`: the call reaches DynamoDB and commits, then the function dies (`FunctionCrashed`, a
  BaseException nothing in hangar catches, is raised out of the call): what a Lambda timeout or an
  out-of-memory kill does between two writes.
- `IndexLag()`: a Query of a global secondary index answers without the newest entries (here: none),
  as an index that has not caught up with its table does.

ClientRequestToken is emulated as DynamoDB documents it, since moto ignores it, by the same memory the
embedded backend of `local/` keeps (`local.transaction_tokens`, on `hangar.core.clock` here): a replay
of a committed transaction within 10 minutes succeeds without writing, a token reused for another
request is refused, a cancelled transaction is not remembered.

    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", LostResponse(), times=5)
        ...
        assert faults.injected == [...]
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from unittest.mock import patch

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError

from local.transaction_tokens import MISMATCH_MESSAGE, Replay, TransactionTokens

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})


@dataclass(frozen=True)
class Call:
    """One DynamoDB request as hangar's client sent it."""

    operation: str
    body: dict[str, Any]

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, params) of each operation of a transaction, or of the single write."""
        if self.operation == "TransactWriteItems":
            return [next(iter(item.items())) for item in self.body["TransactItems"]]
        return [(self.operation, self.body)]

    def tables(self) -> list[str]:
        return [str(params.get("TableName")) for _, params in self.items()]

    def touches(self, table: str) -> bool:
        return table in self.tables()


Predicate = Callable[[Call], bool]


@dataclass(frozen=True)
class Conflict:
    """A concurrent request touched the item(s): on transactions, the operations on `table` (every one
    when None) answer TransactionConflict."""

    table: str | None = None


@dataclass(frozen=True)
class Throttled:
    code: str = "ProvisionedThroughputExceededException"


@dataclass(frozen=True)
class ConditionFailed:
    table: str
    with_item: bool = True


@dataclass(frozen=True)
class Race:
    action: Callable[[], Any]


@dataclass(frozen=True)
class LostResponse:
    pass


@dataclass(frozen=True)
class Crash:
    pass


@dataclass(frozen=True)
class IndexLag:
    pass


class FunctionCrashed(BaseException):
    """The function died right after a call committed (raised by a `Crash` fault)."""


Fault = Conflict | Throttled | ConditionFailed | Race | LostResponse | Crash | IndexLag


@dataclass
class _Rule:
    operation: str | None
    fault: Fault
    when: Predicate | None
    times: int | None  # None: every matching call


@dataclass
class DynamoFaults:
    client: Any
    rules: list[_Rule] = field(default_factory=list)
    injected: list[tuple[str, str]] = field(default_factory=list)  # (operation, fault kind), in order
    replayed: int = 0  # calls answered from the ClientRequestToken memory
    random_faults: Callable[[Call], Fault | None] | None = None
    _tokens: TransactionTokens = field(default_factory=lambda: TransactionTokens(now=_clock_now))
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _paused: int = 0
    _forward: Callable[[AWSPreparedRequest, str], AWSResponse] | None = None
    _stubber: Any = None

    # -- installation ---------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def installed(cls, client: Any = None, sleep: bool = False) -> Iterator[DynamoFaults]:
        """Faults on hangar's DynamoDB client (`hangar.store.dynamo.client()`) for the block. Retry back-off
        (botocore's, seconds long, and hangar's) does not really sleep unless `sleep`: moto has nobody
        to wait for, and a test with many faults would take minutes."""
        import botocore.endpoint
        from hangar.store import dynamo

        faults = cls(client if client is not None else dynamo.client())
        faults._install()
        try:
            if sleep:
                yield faults
            else:
                with (
                    patch.object(botocore.endpoint, "time", _NoSleep()),
                    patch.object(dynamo, "time", _NoSleep(), create=True),
                ):
                    yield faults
        finally:
            faults._uninstall()

    def _install(self) -> None:
        from moto.core.models import botocore_stubber

        events = self.client.meta.events
        if botocore_stubber.enabled:
            # moto in-process answers from `before-send` too; take its place and call it ourselves, so a
            # call can be answered, forwarded, or forwarded and then lost.
            events.unregister("before-send", botocore_stubber)
            self._stubber = botocore_stubber
            self._forward = lambda request, event_name: botocore_stubber(event_name, request)
        else:
            session = self.client._endpoint.http_session
            self._forward = lambda request, event_name: session.send(request)
        events.register_first("before-send.dynamodb", self._before_send)

    def _uninstall(self) -> None:
        events = self.client.meta.events
        events.unregister("before-send.dynamodb", self._before_send)
        if self._stubber is not None:
            events.register("before-send", self._stubber)

    # -- choosing faults ------------------------------------------------------------------------------

    def inject(self, operation: str | None, fault: Fault, when: Predicate | None = None, times: int | None = 1) -> None:
        """The next `times` calls of `operation` (any when None) for which `when` holds get `fault`."""
        with self._lock:
            self.rules.append(_Rule(operation, fault, when, times))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.random_faults = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No faults inside the block (its calls still go through the token memory)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def _fault_for(self, call: Call) -> Fault | None:
        with self._lock:
            if self._paused:
                return None
            for rule in self.rules:
                if rule.operation not in (None, call.operation) or (rule.when and not rule.when(call)):
                    continue
                if not isinstance(rule.fault, Crash):  # a crash is used up only by a call that commits
                    self._use(rule)
                return rule.fault
            return self.random_faults(call) if self.random_faults else None

    def _use(self, rule: _Rule) -> None:
        if rule.times is not None:
            rule.times -= 1
            if rule.times <= 0:
                self.rules.remove(rule)

    def _crashed(self, fault: Crash) -> None:
        with self._lock:
            rule = next(rule for rule in self.rules if rule.fault is fault)
            self._use(rule)

    # -- answering ------------------------------------------------------------------------------------

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        call = Call(operation, body)
        replay = self._replay(call) if operation == "TransactWriteItems" else None
        fault = self._fault_for(call)
        if replay is not None and isinstance(fault, Conflict | ConditionFailed | Race | IndexLag):
            fault = None  # a replay of a committed transaction is answered from memory: nothing to decide
        if fault is not None:
            self.injected.append((operation, type(fault).__name__))
        if isinstance(fault, Conflict):
            return self._conflict(call, fault)
        if isinstance(fault, Throttled):
            return _error(fault.code, "The level of configured provisioned throughput for the table was exceeded")
        if isinstance(fault, ConditionFailed):
            return self._condition_failed(call, fault)
        if isinstance(fault, IndexLag) and operation == "Query" and "IndexName" in body:
            return _ok({"Items": [], "Count": 0, "ScannedCount": 0})
        if isinstance(fault, Race):
            with self.paused():
                fault.action()
        response = replay if replay is not None else self._send(request, event_name, call)
        if isinstance(fault, LostResponse):
            raise ReadTimeoutError(endpoint_url=request.url)
        if isinstance(fault, Crash) and response.status_code == 200:
            self._crashed(fault)
            raise FunctionCrashed(f"after {operation}")
        return response

    def _send(self, request: AWSPreparedRequest, event_name: str, call: Call) -> AWSResponse:
        assert self._forward is not None
        response = self._forward(request, event_name)
        if call.operation == "TransactWriteItems" and response.status_code == 200:
            self._tokens.committed(call.body)
        return response

    def _replay(self, call: Call) -> AWSResponse | None:
        """DynamoDB's answer to a token it remembers: success without a write (counted in `replayed`),
        or a mismatch; None for a token it does not remember."""
        replay = self._tokens.replay(call.body)
        if replay is Replay.NEW:
            return None
        if replay is Replay.MISMATCH:
            return _error("IdempotentParameterMismatchException", MISMATCH_MESSAGE)
        with self._lock:
            self.replayed += 1
        return _ok({})

    def _conflict(self, call: Call, fault: Conflict) -> AWSResponse:
        if call.operation != "TransactWriteItems":
            return _error("TransactionConflictException", "Transaction is ongoing for the item")
        codes = [
            "TransactionConflict" if fault.table in (None, params.get("TableName")) else "None"
            for _, params in call.items()
        ]
        return _cancelled([{"Code": code} for code in codes])

    def _condition_failed(self, call: Call, fault: ConditionFailed) -> AWSResponse:
        reasons: list[dict[str, Any]] = []
        for _, params in call.items():
            if params.get("TableName") != fault.table:
                reasons.append({"Code": "None"})
                continue
            reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
            if fault.with_item:
                with self.paused():
                    stored = self.client.get_item(TableName=params["TableName"], Key=params["Key"], ConsistentRead=True)
                if "Item" in stored:
                    reason["Item"] = stored["Item"]
            reasons.append(reason)
        if call.operation != "TransactWriteItems":
            return _error(
                "ConditionalCheckFailedException", "The conditional request failed", Item=reasons[0].get("Item")
            )
        return _cancelled(reasons)


def _clock_now() -> float:
    from hangar.core import clock

    return clock.now()


class _NoSleep:
    """The `time` module, except that sleeping returns at once."""

    def sleep(self, seconds: float) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _Body(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _response(status: int, body: dict[str, Any]) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": uuid.uuid4().hex}
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", status, headers, _Body(json.dumps(body).encode()))


def _ok(body: dict[str, Any]) -> AWSResponse:
    return _response(200, body)


def _error(code: str, message: str, **extra: Any) -> AWSResponse:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    body.update({key: value for key, value in extra.items() if value is not None})
    return _response(400, body)


def _cancelled(reasons: list[dict[str, Any]]) -> AWSResponse:
    summary = ", ".join(str(reason["Code"]) for reason in reasons)
    return _error(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{summary}]",
        CancellationReasons=reasons,
    )


# -- random faults for property tests ----------------------------------------------------------------


def transient_faults(rng: random.Random, rate: float = 0.15) -> Callable[[Call], Fault | None]:
    """Faults real DynamoDB produces at any moment and that change nothing by themselves: conflicts on
    writes (on one table of a transaction, or all), throttling on any call, and lost responses after a
    write committed. Retries must absorb each of them without a trace."""

    def choose(call: Call) -> Fault | None:
        if rng.random() >= rate:
            return None
        kinds: list[Fault] = [Throttled()]
        if call.operation in WRITES:
            kinds += [Conflict(rng.choice([None, *call.tables()])), LostResponse()]
        return rng.choice(kinds)

    return choose
