"""The one clock every module reads, so tests and `local/` can move time forward."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_offset_seconds = 0.0
_frozen_at: float | None = None


def now() -> float:
    """Seconds since the epoch, plus any offset `local/` or a test has applied."""
    if _frozen_at is not None:
        return _frozen_at + _offset_seconds
    return time.time() + _offset_seconds


@contextmanager
def frozen() -> Iterator[float]:
    """Time stands still inside the block (tests only): work that takes long on a loaded machine sees
    the same `now()` throughout; `advance` still moves it. Yields the frozen time."""
    global _frozen_at
    previous = _frozen_at
    _frozen_at = time.time() if previous is None else previous
    try:
        yield now()
    finally:
        _frozen_at = previous


def advance(seconds: float) -> None:
    """Move the clock forward (local mode and tests only; Lambda never calls this)."""
    global _offset_seconds
    _offset_seconds += seconds


def offset() -> float:
    """How far `advance` has moved the clock (local mode hands it to the embedded AWS backend)."""
    return _offset_seconds


def reset() -> None:
    global _offset_seconds, _frozen_at
    _offset_seconds = 0.0
    _frozen_at = None


def iso(epoch: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds, as the seed documents show (2025-06-15T10:30:00.000Z)."""
    moment = datetime.fromtimestamp(now() if epoch is None else epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
