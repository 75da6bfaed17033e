"""The scheduled sweep (every minute): stale runners offline and their jobs recovered; deadlines enforced.

It reads only what is stale or due — the sparse LiveByHeartbeat index below the stale cut-off, the
held jobs of each runner it takes offline (none, in the common case: then the offline write is all),
and the DueByDeadline range up to now — never the whole fleet. Each item is handled on its own (one
failure is logged and counted, the rest go on; boto3's standard retry mode absorbs throttling, and
`store.dynamo` retries conflicts), every write is conditional on the state that was read, so a second
run, or one racing heartbeats, reports and cancels, does no harm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.observability import logger, metrics
from hangar.jobs.recovery import Leaving, handle_due_job, retire_runner
from hangar.store import jobs as job_store
from hangar.store.runners import live_shards
from hangar.store.sweeper import StaleRunner, stale_runners

# Index entries per Query page: what a sweep holds in memory at once, and how often it checks its time.
PAGE_SIZE = 200


@dataclass
class SweepSummary:
    runnersMarkedOffline: int = 0
    heartbeatsWon: int = 0  # stale when read, but a heartbeat landed before the offline write
    jobsRequeued: int = 0
    jobsFailed: int = 0  # runner lost after maxAttempts
    jobsTimedOut: int = 0
    jobsExpired: int = 0
    itemsRead: int = 0  # items DynamoDB returned to the sweep (index entries and condition-failure images)
    errors: int = 0
    complete: bool = True  # False when the sweep stopped early for lack of time; the next run continues

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def stale_runner_pages(now: float, summary: SweepSummary) -> Iterator[list[StaleRunner]]:
    """Pages of live runners whose last heartbeat is older than STALE_AFTER_SECONDS, shard after shard:
    one page in memory at a time, however many went silent at once (an outage)."""
    cutoff = now - get_settings().stale_after_seconds
    for shard in live_shards():
        for page in stale_runners(shard, cutoff, PAGE_SIZE):
            summary.itemsRead += len(page)
            yield page


def find_stale_runners(now: float) -> list[StaleRunner]:
    """Every stale runner (tests and tools; the sweep itself reads them page by page)."""
    return [stale for page in stale_runner_pages(now, SweepSummary()) for stale in page]


def take_runner_offline(stale: StaleRunner, summary: SweepSummary) -> None:
    """Marks one stale runner offline together with the recovery of the jobs it held (one transaction),
    unless a heartbeat won the race."""
    retired = retire_runner(
        stale.org_id, stale.runner_id, Leaving.STALE, "runner_lost", seen_heartbeat=stale.last_heartbeat
    )
    counts = retired.counts
    if retired.done:
        summary.runnersMarkedOffline += 1
    elif retired.heartbeat_won:
        summary.heartbeatsWon += 1
    summary.jobsRequeued += counts.requeued
    summary.jobsFailed += counts.failed
    summary.itemsRead += counts.items_read
    summary.errors += counts.errors


def enforce_deadlines(now: float, summary: SweepSummary, time_left: Callable[[], bool]) -> None:
    """Queued jobs past their queue timeout expire; held jobs past their run timeout fail `timeout`."""
    for shard in job_store.due_shards():
        for page in job_store.due_jobs(shard, math.floor(now), PAGE_SIZE):
            summary.itemsRead += len(page)
            for due in page:
                if not time_left():
                    summary.complete = False
                    return
                try:
                    outcome = handle_due_job(due)
                except Exception:
                    logger.exception("deadline enforcement failed", extra={"orgId": due.org_id, "jobId": due.job_id})
                    summary.errors += 1
                    continue
                summary.itemsRead += outcome.items_read
                if outcome.transition == "expired":
                    summary.jobsExpired += 1
                elif outcome.transition == "timed_out":
                    summary.jobsTimedOut += 1


def sweep(time_left: Callable[[], bool] = lambda: True) -> SweepSummary:
    """One full sweep. `time_left()` going False stops it between items (the next run picks up the rest)."""
    summary = SweepSummary()
    now = clock.now()
    for page in stale_runner_pages(now, summary):
        for stale in page:
            if not time_left():
                summary.complete = False
                break
            try:
                take_runner_offline(stale, summary)
            except Exception:
                logger.exception("marking a stale runner offline failed", extra={"orgId": stale.org_id})
                summary.errors += 1
        if not summary.complete:
            break
    if summary.complete:
        enforce_deadlines(now, summary, time_left)
    metrics.add_metric(name="RunnersMarkedOffline", unit="Count", value=summary.runnersMarkedOffline)
    metrics.add_metric(name="JobsRequeued", unit="Count", value=summary.jobsRequeued)
    metrics.add_metric(name="JobsFailed", unit="Count", value=summary.jobsFailed + summary.jobsTimedOut)
    metrics.add_metric(name="JobsTimedOut", unit="Count", value=summary.jobsTimedOut)
    metrics.add_metric(name="JobsExpired", unit="Count", value=summary.jobsExpired)
    metrics.add_metric(name="SweepErrors", unit="Count", value=summary.errors)
    logger.info("sweep finished", extra=summary.as_dict())
    return summary
