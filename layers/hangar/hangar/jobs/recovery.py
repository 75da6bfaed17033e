"""Runners that leave (stale, marked offline, deleted) and jobs whose deadline passed: requeue, fail or
expire the jobs, keeping counters exact.

A runner leaves in ONE transaction together with every job it holds: the runner goes offline (or is
deleted, with its token and its place in the plan), each held job goes back to the queue or fails, and
the runner's and tenant's counters drop by what was released. There is no moment at which a runner is
gone while its jobs are still held, so a crash or a timeout cannot strand a job (and no sweep has to
look for orphans). The runner's held jobs are its `heldJobs` set, which every claim adds to and every
release removes from in the transaction that moves `currentJobs`, read strongly consistent: recovery
never depends on the lagging ActiveByRunner index. The transaction is conditional on the set as read, so
a claim, report or cancel racing it makes it start over from a fresh read.

Every transition is conditional on the state that was seen (the job still held by that runner with the
attempts read, the deadline still the one read), so running it twice, or racing a status report or a
cancel, does no harm: whichever write lands first wins and the other finds nothing to do.

- A lost runner's job goes back to the queue at its ORIGINAL place (queuedAt = createdAt#jobId) with a
  fresh queue deadline, attempts unchanged (counted at claim); when attempts >= maxAttempts it fails
  with error `runner_lost` instead.
- A held job past its run deadline fails with `timeout`; a queued job past its queue deadline expires
  with `queue_timeout`. Both are final (no retry).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from hangar.core import clock
from hangar.core.observability import logger
from hangar.jobs.models.jobs import ACTIVE_STATUSES
from hangar.store import jobs as job_store
from hangar.store import orgs
from hangar.store import runners as runner_store
from hangar.store import tokens as token_store
from hangar.store.dynamo import Raw, apply
from hangar.store.jobs import Job
from hangar.store.runners import Runner
from hangar.store.transactions import TransactionCancelled, transact

LossReason = Literal["runner_lost", "runner_deleted", "runner_marked_offline", "runner_stopped"]

LOSS_MESSAGES: dict[str, str] = {
    "runner_lost": "The runner stopped sending heartbeats",
    "runner_deleted": "The runner was deleted",
    "runner_marked_offline": "The runner was marked offline",
    "runner_stopped": "The runner's agent stopped",
}

# A runner's leaving starts over from a fresh read when a racing write changed what it read.
RETIRE_ATTEMPTS = 5


@dataclass
class RecoveryCounts:
    requeued: int = 0
    failed: int = 0
    items_read: int = 0
    errors: int = 0


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _held_by(org_id: str, runner_id: str) -> tuple[str, dict[str, Any]]:
    return (
        "#runnerKey = :rk AND #status IN (:assigned, :running)",
        {"rk": job_store.runner_key(org_id, runner_id), "assigned": "assigned", "running": "running"},
    )


def _still_held(job: Job, org_id: str, runner_id: str) -> bool:
    return job.status in ACTIVE_STATUSES and job.runner_key == job_store.runner_key(org_id, runner_id)


def held_job_ids(runner: Runner) -> list[str]:
    """The jobs a runner holds, from its item (strongly consistent when the item was). A runner stored
    before `heldJobs` existed, whose count says it holds more, is completed from the ActiveByRunner index."""
    held = set(runner.held_jobs)
    if runner.current_jobs > len(held):
        held |= set(job_store.active_job_ids(runner.org_id, runner.runner_id))
    return sorted(held)


def _held_set_condition(held: list[str]) -> tuple[str, dict[str, Any]]:
    """The runner's `heldJobs` is exactly `held`: as many members, each of them (a set holds no duplicates)."""
    if not held:
        return "attribute_not_exists(#heldJobs)", {}
    members = " AND ".join(f"contains(#heldJobs, :held{index})" for index in range(len(held)))
    return f"size(#heldJobs) = :heldCount AND {members}", {
        "heldCount": len(held),
        **{f"held{index}": job_id for index, job_id in enumerate(held)},
    }


def _requeues(job: Job) -> bool:
    """A job its runner lost goes back to the queue while it has attempts left (else it fails)."""
    return job.attempts < job.max_attempts


def _leave_op(org_id: str, job: Job, runner_id: str, reason: LossReason, now: float) -> dict[str, Any]:
    """The job goes back to the queue (attempts left) or fails `runner_lost`, if still held as read."""
    held, held_values = _held_by(org_id, runner_id)
    condition = held + " AND #attempts = :attempts"
    values = {**held_values, "attempts": job.attempts}
    if _requeues(job):
        return job_store.job_update(
            org_id,
            job.job_id,
            set={"status": "queued", "queueOrg": org_id, "updatedAt": clock.iso(now)},
            # Back at its original place in the queue, with a fresh queue deadline.
            set_expressions=["#queuedAt = #queueSortKey", "#dueAt = #queueTimeoutSeconds + :now"],
            remove=("runnerKey", "runnerId", "assignedAt", "startedAt"),
            condition=condition,
            values={**values, "now": math.ceil(now)},
        ).op()
    return job_store.job_update(
        org_id,
        job.job_id,
        set={
            "status": "failed",
            "error": _error("runner_lost", LOSS_MESSAGES[reason]),
            "finishedAt": clock.iso(now),
            "updatedAt": clock.iso(now),
        },
        remove=("runnerKey", "dueShard", "dueAt"),
        condition=condition,
        values=values,
    ).op()


class Leaving(Enum):
    STALE = "stale"  # the sweeper: offline, only if the heartbeat it read is still the last one
    OFFLINE = "offline"  # marked offline by a user, or by its own agent stopping
    DELETE = "delete"  # deleted by a user: with its token and its place in the plan


@dataclass
class Retired:
    """What a runner's leaving did: `done` False when it did not happen (gone, or a heartbeat won), and
    the runner as it is afterwards when it is offline (None for the sweeper, which does not need it)."""

    done: bool
    runner: Runner | None
    counts: RecoveryCounts
    heartbeat_won: bool = False


def _runner_op(
    runner: Runner, held: list[str], released: int, leaving: Leaving, seen_heartbeat: Raw | None, now: str
) -> dict[str, Any]:
    org_id, runner_id = runner.org_id, runner.runner_id
    # Pinned on the set as read (`held` may add jobs found by the index for a runner stored without one).
    condition, values = _held_set_condition(sorted(runner.held_jobs))
    condition = "attribute_exists(#runnerId) AND #tokenVersion = :tokenVersion AND " + condition
    values["tokenVersion"] = runner.token_version
    if seen_heartbeat is not None:
        condition += " AND attribute_exists(#liveShard) AND #lastHeartbeatEpoch = :seenHeartbeat"
        values["seenHeartbeat"] = seen_heartbeat
    if leaving is Leaving.DELETE:
        return job_store.runner_delete_op(org_id, runner_id, condition, values)
    return runner_store.runner_update(
        org_id,
        runner_id,
        set={"status": "offline", "updatedAt": now},
        remove=("liveShard", "cancelledJobs"),
        add={"currentJobs": -released} if released else {},
        delete={"heldJobs": set(held)} if held else {},
        condition=condition,
        values=values,
    ).op()


def _org_op(org_id: str, released: int, leaving: Leaving) -> dict[str, Any] | None:
    add: dict[str, Any] = {}
    if released:
        add["activeJobs"] = -released
    if leaving is Leaving.DELETE:
        add["runnerCount"] = -1
    if not add:
        return None
    return orgs.org_update(org_id, add=add, condition="attribute_exists(#orgId)").op()


def _leave_cheaply(
    org_id: str, runner_id: str, seen_heartbeat: Raw | None, return_new: bool
) -> tuple[bool, Runner | None]:
    """Offline in one UpdateItem when the runner holds nothing (the common case, and no read first).
    (True, the runner after if `return_new`) or (False, the runner as it is — None when there is none)."""
    condition = "attribute_exists(#runnerId) AND #currentJobs = :zero AND attribute_not_exists(#heldJobs)"
    values: dict[str, Any] = {"zero": 0}
    if seen_heartbeat is not None:
        condition += " AND attribute_exists(#liveShard) AND #lastHeartbeatEpoch = :seenHeartbeat"
        values["seenHeartbeat"] = seen_heartbeat
    written, runner = apply(
        runner_store.runner_update(
            org_id,
            runner_id,
            set={"status": "offline", "updatedAt": clock.iso()},
            remove=("liveShard", "cancelledJobs"),
            condition=condition,
            values=values,
        ),
        return_new=return_new,
    )
    return written, runner_store.runner_from(runner)


def _heartbeat_moved(runner: Runner, seen_heartbeat: Raw) -> bool:
    """The sweeper's read is out of date: the runner heartbeated since, or is no longer live."""
    last = runner.last_heartbeat_epoch
    return runner.live_shard is None or last is None or Decimal(str(last)) != Decimal(seen_heartbeat.value["N"])


def retire_runner(
    org_id: str,
    runner_id: str,
    leaving: Leaving,
    reason: LossReason,
    runner: Runner | None = None,
    seen_heartbeat: Raw | None = None,
    also: Mapping[str, dict[str, Any]] | None = None,
    token_version: int | None = None,
) -> Retired:
    """Takes the runner offline, or deletes it, in ONE transaction with the recovery of every job it holds.

    `runner` is the runner as the caller already read it (strongly consistent), if it did; the sweeper
    passes the heartbeat it read from the stale index instead (`seen_heartbeat`): when that is no longer
    the last one, a heartbeat won and nothing happens. Returns the runner as it is afterwards (None when
    deleted, gone, or when nothing happened). `also` are operations to commit in the same transaction (a
    user's change carries its audit event), so the cheap single write is not used with them.
    `token_version` is the caller's when the runner takes itself offline: once the runner's token has moved
    past it (regenerated meanwhile), nothing happens and the runner is returned as it is now."""
    counts = RecoveryCounts()
    if leaving is not Leaving.DELETE and runner is None and not also:
        written, runner = _leave_cheaply(org_id, runner_id, seen_heartbeat, return_new=seen_heartbeat is None)
        if written:
            return Retired(True, runner, counts)
        if runner is None:
            return Retired(False, None, counts)
    for _ in range(RETIRE_ATTEMPTS):
        if runner is None:
            runner = runner_store.get_runner(org_id, runner_id)
            if runner is None:
                return Retired(False, None, counts)
        if token_version is not None and runner.token_version != token_version:
            return Retired(False, runner, counts)
        if seen_heartbeat is not None and _heartbeat_moved(runner, seen_heartbeat):
            # A heartbeat won the race, or this sweep's own write already landed (a replayed request).
            return Retired(False, None, counts, heartbeat_won=runner.live_shard is not None)
        held = held_job_ids(runner)
        jobs = job_store.get_jobs(org_id, held) if held else []
        counts.items_read += len(jobs)
        leaving_jobs = [job for job in jobs if _still_held(job, org_id, runner_id)]
        now = clock.now()
        operations: dict[str, dict[str, Any]] = {
            "runner": _runner_op(runner, held, len(leaving_jobs), leaving, seen_heartbeat, clock.iso(now))
        }
        for job in leaving_jobs:
            operations[f"job:{job.job_id}"] = _leave_op(org_id, job, runner_id, reason, now)
        org_op = _org_op(org_id, len(leaving_jobs), leaving)
        if org_op is not None:
            operations["org"] = org_op
        if leaving is Leaving.DELETE:
            operations["token"] = token_store.delete_token_op(str(runner.token_id))
        operations.update(also or {})
        try:
            transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled["runner"].missing:
                return Retired(False, None, counts)
            # Something changed what was read (a claim, report, cancel or heartbeat): start over from the
            # runner as the refusal returned it, or from a fresh read.
            runner = runner_store.runner_from(cancelled["runner"].item)
            continue
        for job in leaving_jobs:
            if _requeues(job):
                counts.requeued += 1
            else:
                counts.failed += 1
        return Retired(True, _after_leaving(runner, len(leaving_jobs), leaving, clock.iso(now)), counts)
    logger.warning("runner kept changing while leaving", extra={"orgId": org_id, "runnerId": runner_id})
    counts.errors += 1
    return Retired(False, None, counts)


def _after_leaving(runner: Runner, released: int, leaving: Leaving, now: str) -> Runner | None:
    if leaving is Leaving.DELETE:
        return None
    return replace(
        runner,
        status="offline",
        updated_at=now,
        current_jobs=runner.current_jobs - released,
        live_shard=None,
        cancelled_jobs=frozenset(),
        held_jobs=frozenset(),
    )


# --- deadlines ---------------------------------------------------------------------------------------


@dataclass
class DeadlineOutcome:
    transition: Literal["expired", "timed_out", "none"]
    items_read: int = 0


def release_ops(org_id: str, runner_id: str, job_id: str, now: str) -> dict[str, dict[str, Any]]:
    """The counters a held job gives back when it finishes: its runner's slot and the tenant's."""
    return {
        "runner": runner_store.runner_update(
            org_id,
            runner_id,
            add={"currentJobs": -1},
            delete={"heldJobs": {job_id}},
            set={"updatedAt": now},
            condition="attribute_exists(#runnerId)",
        ).op(),
        "org": job_store.org_release_job_op(org_id),
    }


def handle_due_job(due: job_store.DueJob) -> DeadlineOutcome:
    """A job whose deadline (the one read from the index) passed: queued → expired, held → failed timeout."""
    now = clock.iso()
    expired, item = apply(
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
    job = job_store.job_from(item)
    if job is None or job.status not in ACTIVE_STATUSES or job.runner_id is None:
        return DeadlineOutcome("none", items_read=job is not None)
    org_id, runner_id = due.org_id, job.runner_id
    held, held_values = _held_by(org_id, runner_id)
    operations = {
        "job": job_store.job_update(
            org_id,
            due.job_id,
            set={
                "status": "failed",
                "error": _error("timeout", f"The job ran longer than its {job.timeout_seconds} s timeout"),
                "finishedAt": now,
                "updatedAt": now,
            },
            remove=("runnerKey", "dueShard", "dueAt"),
            condition=held + " AND #dueAt = :seen",
            values={**held_values, "seen": due.due_at},
        ).op(),
        **release_ops(org_id, runner_id, due.job_id, now),
    }
    try:
        transact(operations)
    except TransactionCancelled as cancelled:
        if not cancelled["job"].ok:
            return DeadlineOutcome("none", items_read=1)  # reported or cancelled meanwhile
        if not cancelled["runner"].missing:
            raise
        # A runner stored before deletion released its jobs: fail the job, release the tenant's slot only.
        del operations["runner"]
        transact(operations)
    return DeadlineOutcome("timed_out", items_read=1)
