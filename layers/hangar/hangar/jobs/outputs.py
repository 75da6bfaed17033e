"""What a job's log and artifacts share: retention, and the log fields of both dialects' job views.

Retention (`LogRetentionDays`): a job's log expires that many days after its first chunk (all of it at
once, never a log without its beginning), an artifact that many days after it was declared. Nothing
scans for expired data: DynamoDB's TTL and the bucket's lifecycle rule delete it, in their own time
(TTL typically within days); until then every read filters it out by the clock, so the API shows
exactly the retention it promises. The job itself stays.
"""

from __future__ import annotations

import math
from typing import Any

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.store.jobs import Job

DAY_SECONDS = 86400


def expiry_epoch(now: float) -> int:
    """When output written at `now` expires (the TTL attribute's value)."""
    return math.ceil(now + get_settings().log_retention_days * DAY_SECONDS)


def expired(expires_at: Any, now: float | None = None) -> bool:
    return expires_at is not None and float(expires_at) <= (clock.now() if now is None else now)


def log_expired(job: Job, now: float | None = None) -> bool:
    return expired(job.log_expires_at_epoch, now)


def log_fields(job: Job) -> dict[str, Any]:
    """`logBytes` (UTF-8 bytes stored) and `truncated`, as both dialects' job views show them."""
    if log_expired(job):
        return {"logBytes": 0, "truncated": False}
    return {"logBytes": job.log_bytes, "truncated": job.log_truncated}
