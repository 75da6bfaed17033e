"""The one clock every module reads, so tests and `local/` can move time forward."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_seconds = 0.0


def now() -> float:
    """Seconds since the epoch, plus any offset `local/` or a test has applied."""
    return time.time() + _offset_seconds


def advance(seconds: float) -> None:
    """Move the clock forward (local mode and tests only; Lambda never calls this)."""
    global _offset_seconds
    _offset_seconds += seconds


def reset() -> None:
    global _offset_seconds
    _offset_seconds = 0.0


def iso(epoch: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds, as the seed documents show (2025-06-15T10:30:00.000Z)."""
    moment = datetime.fromtimestamp(now() if epoch is None else epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
