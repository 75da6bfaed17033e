"""Jobs whose runner is gone or whose deadline passed: requeue, fail or expire them, keeping counters exact.

Every transition here is conditional on the state that was seen (the job still held by that runner,
the deadline still the one read), so running it twice, or racing a status report or a cancel, does
no harm: whichever write lands first wins and the other finds nothing to do.

- A lost runner's job (sweeper, mark-offline, delete) goes back to the queue at its ORIGINAL place
  (queuedAt = createdAt#jobId) with a fresh queue deadline, attempts unchanged (counted at claim);
  when attempts >= maxAttempts it fails with error `runner_lost` instead.
- A held job past its run deadline fails with `timeout`; a queued job past its queue deadline expires
  with `queue_timeout`. Both are final (no retry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from hangar import clock
from hangar.models.jobs import ACTIVE_STATUSES
from hangar.observability import logger
from hangar.store import jobs as job_store
from hangar.store.dynamo import Item, cancellation_reasons, reason_failed, reason_item, transact

LossReason = Literal["runner_lost", "runner_deleted", "runner_marked_offline"]

LOSS_MESSAGES: dict[str, str] = {
    "runner_lost": "The runner stopped sending heartbeats",
    "runner_deleted": "The runner was deleted",
    "runner_marked_offline": "The runner was marked offline",
}


@dataclass
class RecoveryCounts:
    requeued: int = 0
    failed: int = 0
    items_read: int = 0
    errors: int = 0

    def add(self, other: RecoveryCounts) -> None:
        self.requeued += other.requeued
        self.failed += other.failed
        self.items_read += other.items_read
        self.errors += other.errors


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _release_ops(org_id: str, runner_id: str, release_runner: bool, now: str) -> list[dict[str, Any]]:
    """The counters a held job gives back: its runner's slot (if the runner still exists) and the org's."""
    operations = [job_store.org_release_job_op(org_id)]
    if release_runner:
        operations.append(
            job_store.runner_update(
                org_id,
                runner_id,
                add={"currentJobs": -1},
                set={"updatedAt": now},
                condition="attribute_exists(#runnerId)",
            ).op()
        )
    return operations


def _held_by(org_id: str, runner_id: str) -> tuple[str, dict[str, Any]]:
    return (
        "#runnerKey = :rk AND #status IN (:assigned, :running)",
        {"rk": job_store.runner_key(org_id, runner_id), "assigned": "assigned", "running": "running"},
    )


def _requeue_op(org_id: str, job_id: str, runner_id: str, now: float) -> dict[str, Any]:
    held, held_values = _held_by(org_id, runner_id)
    return job_store.job_update(
        org_id,
        job_id,
        set={"status": "queued", "queueOrg": org_id, "updatedAt": clock.iso(now)},
        # Back at its original place in the queue, with a fresh queue deadline.
        set_expressions=[
            "#queuedAt = #queueSortKey",
            "#dueAt = #queueTimeoutSeconds + :now",
        ],
        remove=("runnerKey", "runnerId", "assignedAt", "startedAt"),
        condition=held + " AND #attempts < #maxAttempts",
        values={**held_values, "now": math.ceil(now)},
    ).op()


def _fail_op(org_id: str, job_id: str, runner_id: str, error: dict[str, str], now: str) -> dict[str, Any]:
    held, held_values = _held_by(org_id, runner_id)
    return job_store.job_update(
        org_id,
        job_id,
        set={"status": "failed", "error": error, "finishedAt": now, "updatedAt": now},
        remove=("runnerKey", "dueShard", "dueAt"),
        condition=held,
        values=held_values,
    ).op()


def recover_job(org_id: str, job_id: str, runner_id: str, reason: LossReason, release_runner: bool) -> RecoveryCounts:
    """Requeues (attempts left) or fails one job held by a lost runner; a job that moved on is left alone.
    Optimistic: the requeue's condition includes attempts < maxAttempts, and only when that fails (the
    job's state comes back with the refusal) is the job failed instead, so the common case reads nothing."""
    counts = RecoveryCounts()
    now = clock.now()
    requeue = True
    for _ in range(3):
        if requeue:
            job_op = _requeue_op(org_id, job_id, runner_id, now)
        else:
            job_op = _fail_op(org_id, job_id, runner_id, _error("runner_lost", LOSS_MESSAGES[reason]), clock.iso(now))
        try:
            transact([job_op, *_release_ops(org_id, runner_id, release_runner, clock.iso(now))])
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reason_failed(reasons[0]):
                job = reason_item(reasons[0])
                counts.items_read += job is not None
                if job is None or not _still_held(job, org_id, runner_id):
                    return counts  # completed, cancelled or recovered meanwhile
                if int(job.get("attempts", 0)) >= int(job.get("maxAttempts", 1)):
                    requeue = False
                continue
            if release_runner and reason_failed(reasons[2]) and not reason_item(reasons[2]):
                release_runner = False  # the runner was deleted meanwhile: only the org counter remains
                continue
            raise
        if requeue:
            counts.requeued += 1
        else:
            counts.failed += 1
        return counts
    logger.warning("job kept changing during recovery", extra={"orgId": org_id, "jobId": job_id})
    counts.errors += 1
    return counts


def _still_held(job: Item, org_id: str, runner_id: str) -> bool:
    return job.get("status") in ACTIVE_STATUSES and job.get("runnerKey") == job_store.runner_key(org_id, runner_id)


def recover_runner_jobs(
    org_id: str, runner_id: str, reason: LossReason = "runner_lost", release_runner: bool = True
) -> RecoveryCounts:
    """Every job the runner holds goes back to the queue (or fails runner_lost after maxAttempts).
    `release_runner=False` when the runner item is already deleted (nothing to decrement)."""
    counts = RecoveryCounts()
    job_ids = job_store.active_job_ids(org_id, runner_id)
    counts.items_read += len(job_ids)
    for job_id in job_ids:
        try:
            counts.add(recover_job(org_id, job_id, runner_id, reason, release_runner))
        except Exception:
            # One job's failure must not strand the others; its run deadline is the backstop.
            logger.exception("job recovery failed", extra={"orgId": org_id, "jobId": job_id})
            counts.errors += 1
    return counts


# --- deadlines ---------------------------------------------------------------------------------------


@dataclass
class DeadlineOutcome:
    transition: Literal["expired", "timed_out", "none"]
    items_read: int = 0


def handle_due_job(due: job_store.DueJob) -> DeadlineOutcome:
    """A job whose deadline (the one read from the index) passed: queued → expired, held → failed timeout."""
    now = clock.iso()
    expired, job = job_store.apply(
        job_store.job_update(
            due.org_id,
            due.job_id,
            set={
                "status": "expired",
                "error": _error("queue_timeout", "No runner took the job before its queue timeout"),
                "finishedAt": now,
                "updatedAt": now,
            },
            remove=("queueOrg", "queuedAt", "dueShard", "dueAt"),
            condition="#status = :queued AND #dueAt = :seen",
            values={"queued": "queued", "seen": due.due_at},
        ),
        return_new=False,
    )
    if expired:
        return DeadlineOutcome("expired")
    if job is None or job.get("status") not in ACTIVE_STATUSES or "runnerId" not in job:
        return DeadlineOutcome("none", items_read=job is not None)
    org_id, runner_id = due.org_id, str(job["runnerId"])
    held, held_values = _held_by(org_id, runner_id)
    operations = [
        job_store.job_update(
            org_id,
            due.job_id,
            set={
                "status": "failed",
                "error": _error("timeout", f"The job ran longer than its {job['timeoutSeconds']} s timeout"),
                "finishedAt": now,
                "updatedAt": now,
            },
            remove=("runnerKey", "dueShard", "dueAt"),
            condition=held + " AND #dueAt = :seen",
            values={**held_values, "seen": due.due_at},
        ).op(),
        *_release_ops(org_id, runner_id, True, now),
    ]
    try:
        transact(operations)
    except ClientError as error:
        reasons = cancellation_reasons(error)
        if reason_failed(reasons[0]):
            return DeadlineOutcome("none", items_read=1)  # reported or cancelled meanwhile
        if len(reasons) > 2 and reason_failed(reasons[2]) and not reason_item(reasons[2]):
            transact(operations[:2])  # runner deleted meanwhile: fail the job, release the org slot only
        else:
            raise
    return DeadlineOutcome("timed_out", items_read=1)
