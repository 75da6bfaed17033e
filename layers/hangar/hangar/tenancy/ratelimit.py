"""Per-tenant rate limits that API Gateway usage plans cannot express (docs/limits.md).

    enforce_rate_limit(org_id, f"regenerate-token:{runner_id}", limit=5, window_seconds=3600)

counts one request against the named limit of the tenant, or raises `RateLimited` (HTTP 429 with
`Retry-After` = seconds until the window ends) when the window is already full. A refused request
writes nothing, so it does not extend the refusal.

Mechanism: a fixed window counter in DynamoDB (`hangar.store.ratelimit`): one conditional
UpdateItem per allowed or refused request, no read. Windows are aligned to the epoch
(`window_start = now - now % window_seconds`), so a caller can get up to `2 * limit` requests
through in a short burst straddling a window boundary, never more; use it for coarse limits
(per hour, per day) where that is acceptable, not for smoothing traffic (usage plans do that).

Choosing `name`: it is the counter's identity within the tenant, so put what the limit is per into
it: "regenerate-token:<runnerId>" limits each runner separately, "create-job" would limit the whole
tenant. Names must not contain "#". Call it after the checks that can refuse the request for other
reasons (404, 403, 400), so that only requests that would otherwise succeed use the budget; where the
request's own write can still be refused (a transaction), put `counted_request(...).operation` into
that transaction instead, so that only what succeeded is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hangar.core import clock
from hangar.core.errors import RateLimited
from hangar.store import ratelimit as rate_store

# How long a finished window's counter lingers before DynamoDB's TTL deletes it (kept for inspection).
WINDOW_RETENTION_SECONDS = 86400


@dataclass(frozen=True)
class CountedRequest:
    """One request to count against a limit inside the caller's own transaction (so a request that ends
    in an error is never counted): the operation, and what to raise when its condition refuses it."""

    operation: dict[str, Any]
    refusal: RateLimited


def counted_request(org_id: str, name: str, limit: int, window_seconds: int) -> CountedRequest:
    """The count of one request against `name` for the tenant, as a TransactWriteItems operation."""
    if "#" in name or not name:
        raise ValueError("rate limit names are non-empty and contain no '#'")
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window_seconds must be positive")
    now = clock.now()
    window_start = int(now // window_seconds) * window_seconds
    window_end = window_start + window_seconds
    operation = rate_store.count_in_window_op(
        org_id, name, window_start, limit, expires_at_epoch=window_end + WINDOW_RETENTION_SECONDS
    )
    refusal = RateLimited(
        f"Rate limit of {limit} per {_duration(window_seconds)} reached",
        retry_after=max(1, math.ceil(window_end - now)),
    )
    return CountedRequest(operation, refusal)


def enforce_rate_limit(org_id: str, name: str, limit: int, window_seconds: int) -> None:
    """Counts one request against `name` for the tenant; 429 RateLimited when `limit` is reached."""
    counted = counted_request(org_id, name, limit, window_seconds)
    if not rate_store.count(counted.operation):
        raise counted.refusal


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds == size:
            return unit
        if seconds % size == 0:
            return f"{seconds // size} {unit}s"
    return f"{seconds} seconds"
