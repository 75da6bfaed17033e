"""The runner's side of a job: claim the oldest job it can run (poll), then report its status.

A claim is ONE TransactWriteItems over three items, so a job goes to exactly one runner and the
counters never drift:
- the job: queued → assigned, only while still queued and (if pinned) pinned to this runner;
- the runner: one more current job, only with the caller's token version, a free slot, every label
  the job needs (its LIVE labels: the authorizer's are a hint up to its cache TTL old) and a fresh
  heartbeat (a runner the sweeper could not see must not hold work);
- the org: one more active job, only under concurrentJobLimit with an active license.
Costs: an empty poll is one Query; a poll that gets a job is that Query plus one transaction.
A status report is one transaction in the common case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from hangar import clock
from hangar.auth import RunnerPrincipal
from hangar.config import get_settings
from hangar.errors import BadRequest, Conflict, NotFound, Unauthorized
from hangar.job_outputs import log_fields
from hangar.jobs import bounded_json, work_fields
from hangar.models.jobs import MAX_RESULT_BYTES, ApiJob, JobStatus, JobStatusResult, PollResult, ReportedStatus
from hangar.observability import metrics
from hangar.store import jobs as job_store
from hangar.store import runners as runner_store
from hangar.store.dynamo import Item, cancellation_reasons, reason_failed, reason_item, transact

# A poll reads the queue a page of this many jobs at a time (oldest first), reads a further page only
# while it has found nothing it could run, at most this many pages, and tries at most this many claims.
# A runner that finds nothing within them polls again later.
POLL_PAGE_SIZE = 25
POLL_MAX_PAGES = 4
POLL_CLAIM_ATTEMPTS = 5

REPORT_ATTEMPTS = 3

TOKEN_REVOKED = "Runner token was regenerated or revoked"


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    JOB_GONE = "job_gone"  # taken by another runner, cancelled, or a write conflict: try the next one
    LABELS_CHANGED = "labels_changed"  # the authorizer's label hint was stale
    NO_CAPACITY = "no_capacity"  # runner full, runner not live, or tenant at its limit: no job this poll


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    live_labels: frozenset[str] = frozenset()


def can_run(job: Item, runner_id: str, labels: frozenset[str]) -> bool:
    pinned = job.get("pinnedRunnerId")
    return (pinned is None or pinned == runner_id) and set(job.get("labels") or []) <= labels


def _runner_claim_op(principal: RunnerPrincipal, job: Item, fresh_since: float) -> dict[str, Any]:
    job_labels = list(job.get("labels") or [])
    label_checks = "".join(f" AND contains(#labels, :l{index})" for index in range(len(job_labels)))
    return job_store.runner_update(
        principal.org_id,
        principal.runner_id,
        add={"currentJobs": 1},
        condition=(
            runner_store.TOKEN_GUARD + " AND #currentJobs < #configuredConcurrency"
            " AND attribute_exists(#liveShard) AND #lastHeartbeatEpoch >= :freshSince" + label_checks
        ),
        values={
            "tokenVersion": principal.token_version,
            "freshSince": math.floor(fresh_since),
            **{f"l{index}": label for index, label in enumerate(job_labels)},
        },
    ).op()


def _runner_refusal(principal: RunnerPrincipal, runner: Item | None, job: Item, fresh_since: float) -> Claim:
    """Why the runner's condition failed: a revoked token raises; otherwise what the poll should do."""
    if runner is None or int(runner.get("tokenVersion", -1)) != principal.token_version:
        raise Unauthorized(TOKEN_REVOKED)
    live_labels = frozenset(runner.get("labels") or [])
    if int(runner.get("currentJobs", 0)) >= int(runner.get("configuredConcurrency", 1)):
        return Claim(ClaimOutcome.NO_CAPACITY)
    if "liveShard" not in runner or float(runner.get("lastHeartbeatEpoch", 0)) < math.floor(fresh_since):
        return Claim(ClaimOutcome.NO_CAPACITY)
    if not set(job.get("labels") or []) <= live_labels:
        return Claim(ClaimOutcome.LABELS_CHANGED, live_labels)
    return Claim(ClaimOutcome.JOB_GONE)


def claim_job(principal: RunnerPrincipal, job: Item, now: float) -> Claim:
    """One transaction: assign `job` to the runner if the job, the runner and the tenant all allow it."""
    org_id, job_id, runner_id = principal.org_id, job["jobId"], principal.runner_id
    fresh_since = now - get_settings().stale_after_seconds
    now_iso = clock.iso(now)
    operations = [
        job_store.job_update(
            org_id,
            job_id,
            set={
                "status": "assigned",
                "runnerId": runner_id,
                "runnerKey": job_store.runner_key(org_id, runner_id),
                "dueAt": math.ceil(now + int(job["timeoutSeconds"])),
                "assignedAt": now_iso,
                "updatedAt": now_iso,
            },
            add={"attempts": 1},
            remove=("queueOrg", "queuedAt"),
            condition="#status = :queued AND (attribute_not_exists(#pinnedRunnerId) OR #pinnedRunnerId = :me)",
            values={"queued": "queued", "me": runner_id},
        ).op(),
        _runner_claim_op(principal, job, fresh_since),
        job_store.org_job_slot_op(org_id),
    ]
    try:
        transact(operations)
    except ClientError as error:
        _, runner_reason, org_reason = cancellation_reasons(error)
        if reason_failed(runner_reason):
            if runner_reason.get("Code") != "ConditionalCheckFailed":
                return Claim(ClaimOutcome.JOB_GONE)  # a write conflict: another candidate may do
            refusal = _runner_refusal(principal, reason_item(runner_reason), job, fresh_since)
            if refusal.outcome is not ClaimOutcome.JOB_GONE:
                return refusal
        if reason_failed(org_reason) and org_reason.get("Code") == "ConditionalCheckFailed":
            return Claim(ClaimOutcome.NO_CAPACITY)
        return Claim(ClaimOutcome.JOB_GONE)
    return Claim(ClaimOutcome.CLAIMED)


def poll_for_job(principal: RunnerPrincipal) -> Item | None:
    """The oldest queued job of the runner's tenant that it can run, now assigned to it; or None."""
    labels = frozenset(principal.labels)
    tries = 0
    for page_number, page in enumerate(job_store.queued_job_pages(principal.org_id, POLL_PAGE_SIZE), start=1):
        runnable_seen = False
        for job in page:
            if not can_run(job, principal.runner_id, labels):
                continue
            runnable_seen = True
            if tries == POLL_CLAIM_ATTEMPTS:
                return None
            tries += 1
            now = clock.now()
            claim = claim_job(principal, job, now)
            if claim.outcome is ClaimOutcome.CLAIMED:
                job.update(
                    status="assigned",
                    runnerId=principal.runner_id,
                    attempts=int(job.get("attempts", 0)) + 1,
                    assignedAt=clock.iso(now),
                )
                metrics.add_metric(name="JobsClaimed", unit="Count", value=1)
                return job
            if claim.outcome is ClaimOutcome.NO_CAPACITY:
                return None
            if claim.outcome is ClaimOutcome.LABELS_CHANGED:
                labels = claim.live_labels
        # Jobs this runner cannot run may fill the head of the queue: look a little further behind them.
        if runnable_seen or page_number == POLL_MAX_PAGES:
            return None
    return None


def poll_result(job: Item | None) -> PollResult:
    """The poll response: the claimed job in the `/api` dialect (or null) and when to poll again."""
    view = None
    if job is not None:
        view = ApiJob(_id=job["jobId"], attempts=int(job["attempts"]), **work_fields(job), **log_fields(job))
    return PollResult(job=view, pollIntervalSeconds=get_settings().poll_interval_seconds)


# --- status reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    job_id: str
    status: JobStatus
    cancel_requested: bool


def status_view(report: StatusReport) -> JobStatusResult:
    return JobStatusResult(jobId=report.job_id, status=report.status, cancelRequested=report.cancel_requested)


def _report_operations(
    principal: RunnerPrincipal, job_id: str, status: ReportedStatus, result: str | None, error: str | None
) -> list[dict[str, Any]]:
    org_id, runner_id = principal.org_id, principal.runner_id
    now = clock.iso()
    if status == "running":
        return [
            job_store.job_update(
                org_id,
                job_id,
                set={"status": "running", "startedAt": now, "updatedAt": now},
                condition="#runnerId = :me AND #status = :assigned",
                values={"me": runner_id, "assigned": "assigned"},
            ).op(),
            job_store.runner_token_check_op(org_id, runner_id, principal.token_version),
        ]
    finished: dict[str, Any] = {"status": status, "finishedAt": now, "updatedAt": now}
    if result is not None:
        finished["resultJson"] = result
    if status == "failed":
        finished["error"] = {"code": "job_failed", "message": error or "The runner reported the job failed"}
    runner_counts: dict[str, Any] = {"currentJobs": -1}
    if status == "completed":
        runner_counts["jobsCompleted"] = 1
    return [
        job_store.job_update(
            org_id,
            job_id,
            set=finished,
            remove=("runnerKey", "dueShard", "dueAt"),
            condition="#runnerId = :me AND #status IN (:assigned, :running)",
            values={"me": runner_id, "assigned": "assigned", "running": "running"},
        ).op(),
        job_store.runner_update(
            org_id,
            runner_id,
            add=runner_counts,
            condition=runner_store.TOKEN_GUARD,
            values={"tokenVersion": principal.token_version},
        ).op(),
        job_store.org_release_job_op(org_id),
    ]


def _acknowledge_cancel(principal: RunnerPrincipal, job_id: str) -> None:
    """The runner has heard that its job was cancelled: stop listing it in heartbeat responses."""
    ok, _ = job_store.apply(
        job_store.runner_update(
            principal.org_id,
            principal.runner_id,
            delete={"cancelledJobs": {job_id}},
            condition=runner_store.TOKEN_GUARD,
            values={"tokenVersion": principal.token_version},
            return_old_on_failure=False,
        ),
        return_new=False,
    )
    if not ok:
        raise Unauthorized(TOKEN_REVOKED)


def report_status(
    principal: RunnerPrincipal,
    job_id: str,
    status: ReportedStatus,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> StatusReport:
    """assigned → running; assigned|running → completed|failed (freeing the slot in the same write).
    Repeating the current state is a no-op; a job cancelled meanwhile answers cancel_requested."""
    if status == "running" and (result is not None or error is not None):
        field = "result" if result is not None else "error"
        raise BadRequest(f"{field}: only a completed or failed job has a {field}", field=field)
    if status == "completed" and error is not None:
        raise BadRequest("error: only a failed job has an error", field="error")
    result_json = None if result is None else bounded_json(result, MAX_RESULT_BYTES, "result")
    for attempt in range(REPORT_ATTEMPTS):
        try:
            transact(_report_operations(principal, job_id, status, result_json, error))
        except ClientError as failure:
            reasons = cancellation_reasons(failure)
            if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                # Another transition (cancel, sweep) touched the job at the same moment: look again.
                if attempt + 1 < REPORT_ATTEMPTS:
                    continue
                raise Conflict(f"Job {job_id} is changing; retry the report", code="concurrent_update") from None
            return _explain_refusal(principal, job_id, status, reasons)
        if status != "running":
            metrics.add_metric(name="JobsFinished", unit="Count", value=1)
        return StatusReport(job_id, status, cancel_requested=False)
    raise AssertionError("unreachable")


def _explain_refusal(
    principal: RunnerPrincipal, job_id: str, status: ReportedStatus, reasons: list[dict[str, Any]]
) -> StatusReport:
    """A refused report, read from the failed conditions alone (ALL_OLD): no-op, cancelled, 404 or 409."""
    if reason_failed(reasons[1]):
        raise Unauthorized(TOKEN_REVOKED)
    current = reason_item(reasons[0]) if reason_failed(reasons[0]) else None
    if current is None or current.get("runnerId") != principal.runner_id:
        raise NotFound(f"Job {job_id} not found")
    if current["status"] == "cancelled":
        _acknowledge_cancel(principal, job_id)
        return StatusReport(job_id, "cancelled", cancel_requested=True)
    if current["status"] == status:
        return StatusReport(job_id, status, cancel_requested=False)
    raise Conflict(f"Job {job_id} is {current['status']}; it cannot become {status}", code="invalid_transition")
