"""DynamoDB's memory of TransactWriteItems ClientRequestTokens, which moto does not keep.

DynamoDB documents it: a transaction that committed is remembered for 10 minutes; a call with the same
token and the same request in that window succeeds without writing anything, one with the same token and
a different request is refused (IdempotentParameterMismatchException); a cancelled transaction is not
remembered. Hangar relies on it: when a transaction's response is lost (a read timeout under load),
botocore and `hangar.store.transactions` send it again with the same token, and without this memory the
replay meets its own first attempt as a failed condition (a 500 where AWS answers 201).

Used by the embedded backend (`local.backend`) and by the in-process fault layer (tests/faults.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

TOKEN_WINDOW_SECONDS = 600

MISMATCH_MESSAGE = (
    "DynamoDB rejected the request because you retried a request with a different payload "
    "but with an idempotent token that was already used."
)


class Replay(Enum):
    NEW = "new"  # not remembered: run it
    SUCCEEDED = "succeeded"  # committed before: answer success, write nothing
    MISMATCH = "mismatch"  # the token was used for another request


def _fingerprint(body: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in body.items() if key != "ClientRequestToken"}, sort_keys=True)


class TransactionTokens:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._committed: dict[str, tuple[str, float]] = {}  # token -> (fingerprint, committed at)
        self._lock = threading.Lock()

    def replay(self, body: dict[str, Any]) -> Replay:
        token = body.get("ClientRequestToken")
        with self._lock:
            remembered = self._committed.get(token) if token else None
            if remembered is None:
                return Replay.NEW
            fingerprint, committed_at = remembered
            if self._now() - committed_at > TOKEN_WINDOW_SECONDS:
                del self._committed[token]  # type: ignore[arg-type]
                return Replay.NEW
            return Replay.SUCCEEDED if fingerprint == _fingerprint(body) else Replay.MISMATCH

    def committed(self, body: dict[str, Any]) -> None:
        token = body.get("ClientRequestToken")
        if token:
            with self._lock:
                now = self._now()
                # Forget expired tokens as new ones come, so a long `make run` does not grow without end.
                for old in [key for key, (_, at) in self._committed.items() if now - at > TOKEN_WINDOW_SECONDS]:
                    del self._committed[old]
                self._committed[token] = (_fingerprint(body), now)
