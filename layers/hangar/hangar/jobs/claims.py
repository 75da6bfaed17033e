"""The runner's side of a job: claim the oldest job it can run (poll), then report its status.

A claim is ONE TransactWriteItems over three items, so a job goes to exactly one runner and the
counters never drift:
- the job: queued → assigned, only while still queued and (if pinned) pinned to this runner;
- the runner: one more current job, only with the caller's token version, a free slot, every label
  the job needs (its LIVE labels: the authorizer's are a hint up to its cache TTL old) and a fresh
  heartbeat (a runner the sweeper could not see must not hold work);
- the org: one more active job, only under concurrentJobLimit with an active license.
The runner's `heldJobs` set gains the job in the same write, so recovery knows what a runner holds from
one strongly consistent read (hangar.jobs.recovery).

Costs: a poll that gets a job is one Query plus the claim transaction, which also proves the caller's
token is still the runner's; a poll that claims nothing reads the runner (one strongly consistent
GetItem) so that a regenerated or deleted runner's token is refused on its very next call, even while
the authorizer's cached Allow lives. A status report is one transaction in the common case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import BadRequest, Conflict, NotFound
from hangar.core.observability import metrics
from hangar.identity.auth import RunnerPrincipal, require_current_runner_token, runner_token_refused
from hangar.identity.credentials import current_runner
from hangar.jobs.documents import bounded_json, work_fields
from hangar.jobs.models.jobs import MAX_RESULT_BYTES, ApiJob, JobStatus, JobStatusResult, PollResult, ReportedStatus
from hangar.jobs.outputs import log_fields
from hangar.store import jobs as job_store
from hangar.store import runners as runner_store
from hangar.store.dynamo import Item, apply
from hangar.store.jobs import Job
from hangar.store.transactions import OutcomeUnknown, TransactionCancelled, transact

# A poll reads the queue a page of this many jobs at a time (oldest first), reads a further page only
# while it has found nothing it could run, at most this many pages, and tries at most this many claims.
# A runner that finds nothing within them polls again later.
POLL_PAGE_SIZE = 25
POLL_MAX_PAGES = 4
POLL_CLAIM_ATTEMPTS = 5


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    JOB_GONE = "job_gone"  # taken by another runner or cancelled: try the next one
    LABELS_CHANGED = "labels_changed"  # the authorizer's label hint was stale
    NO_CAPACITY = "no_capacity"  # runner full or not live, tenant at its limit, or contended: no job this poll


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    live_labels: frozenset[str] = frozenset()
    token_checked: bool = False  # the runner's item showed the caller's token is still its token


def can_run(job: Job, runner_id: str, labels: frozenset[str]) -> bool:
    pinned = job.pinned_runner_id
    return (pinned is None or pinned == runner_id) and set(job.labels) <= labels


def _runner_claim_op(principal: RunnerPrincipal, job: Job, fresh_since: float) -> dict[str, Any]:
    job_labels = list(job.labels)
    label_checks = "".join(f" AND contains(#labels, :l{index})" for index in range(len(job_labels)))
    return runner_store.runner_update(
        principal.org_id,
        principal.runner_id,
        add={"currentJobs": 1, "heldJobs": {job.job_id}},
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


def _runner_refusal(principal: RunnerPrincipal, refused: Item | None, job: Job, fresh_since: float) -> Claim:
    """Why the runner's condition failed: a revoked token raises; otherwise what the poll should do."""
    runner = require_current_runner_token(principal, runner_store.runner_from(refused))
    live_labels = frozenset(runner.labels)
    if runner.current_jobs >= runner.configured_concurrency:
        return Claim(ClaimOutcome.NO_CAPACITY, token_checked=True)
    if runner.live_shard is None or float(runner.last_heartbeat_epoch or 0) < math.floor(fresh_since):
        return Claim(ClaimOutcome.NO_CAPACITY, token_checked=True)
    if not set(job.labels) <= live_labels:
        return Claim(ClaimOutcome.LABELS_CHANGED, live_labels, token_checked=True)
    return Claim(ClaimOutcome.JOB_GONE, token_checked=True)


def claim_job(principal: RunnerPrincipal, job: Job, now: float) -> Claim:
    """One transaction: assign `job` to the runner if the job, the runner and the tenant all allow it."""
    org_id, job_id, runner_id = principal.org_id, job.job_id, principal.runner_id
    fresh_since = now - get_settings().stale_after_seconds
    now_iso = clock.iso(now)
    operations = {
        "job": job_store.job_update(
            org_id,
            job_id,
            set={
                "status": "assigned",
                "runnerId": runner_id,
                "runnerKey": job_store.runner_key(org_id, runner_id),
                "dueAt": math.ceil(now + job.timeout_seconds),
                "assignedAt": now_iso,
                "updatedAt": now_iso,
            },
            add={"attempts": 1},
            remove=("queueOrg", "queuedAt"),
            condition="#status = :queued AND (attribute_not_exists(#pinnedRunnerId) OR #pinnedRunnerId = :me)",
            values={"queued": "queued", "me": runner_id},
        ).op(),
        "runner": _runner_claim_op(principal, job, fresh_since),
        "org": job_store.org_job_slot_op(org_id),
    }
    try:
        transact(operations)
    except TransactionCancelled as cancelled:
        checked = False
        if cancelled["runner"].condition_failed:
            refusal = _runner_refusal(principal, cancelled["runner"].item, job, fresh_since)
            if refusal.outcome is not ClaimOutcome.JOB_GONE:
                return refusal
            checked = True
        if cancelled["org"].condition_failed:
            return Claim(ClaimOutcome.NO_CAPACITY, token_checked=checked)
        if cancelled["runner"].conflict or cancelled["org"].conflict:
            # Still contended after transact's retries: no job this poll, the runner polls again later.
            return Claim(ClaimOutcome.NO_CAPACITY, token_checked=checked)
        return Claim(ClaimOutcome.JOB_GONE, token_checked=checked)
    except OutcomeUnknown:
        # Every replay of the claim lost its answer: the job says whether it is ours now.
        current = job_store.get_job(org_id, job_id)
        if current is None or current.runner_id != runner_id or current.assigned_at != now_iso:
            raise
    return Claim(ClaimOutcome.CLAIMED, token_checked=True)


def _claim_first_runnable(principal: RunnerPrincipal, labels: frozenset[str]) -> tuple[Job | None, bool]:
    """The oldest queued job of the tenant the runner can run, now assigned to it (or None), and whether
    the attempt showed that the caller's token is still the runner's."""
    tries = 0
    token_checked = False
    for page_number, page in enumerate(job_store.queued_job_pages(principal.org_id, POLL_PAGE_SIZE), start=1):
        runnable_seen = False
        for job in page:
            if not can_run(job, principal.runner_id, labels):
                continue
            runnable_seen = True
            if tries == POLL_CLAIM_ATTEMPTS:
                return None, token_checked
            tries += 1
            now = clock.now()
            claim = claim_job(principal, job, now)
            token_checked = token_checked or claim.token_checked
            if claim.outcome is ClaimOutcome.CLAIMED:
                claimed = replace(
                    job,
                    status="assigned",
                    runner_id=principal.runner_id,
                    attempts=job.attempts + 1,
                    assigned_at=clock.iso(now),
                )
                metrics.add_metric(name="JobsClaimed", unit="Count", value=1)
                return claimed, True
            if claim.outcome is ClaimOutcome.NO_CAPACITY:
                return None, token_checked
            if claim.outcome is ClaimOutcome.LABELS_CHANGED:
                labels = claim.live_labels
        # Jobs this runner cannot run may fill the head of the queue: look a little further behind them.
        if runnable_seen or page_number == POLL_MAX_PAGES:
            return None, token_checked
    return None, token_checked


def poll_for_job(principal: RunnerPrincipal) -> Job | None:
    """The oldest queued job of the runner's tenant that it can run, now assigned to it; or None.

    A poll that claims nothing reads the runner to refuse (401) a token that was regenerated or whose
    runner was deleted; the runner's live labels then also correct the authorizer's hint (cached up to
    its TTL), looking at the queue once more when they have changed."""
    labels = frozenset(principal.labels)
    job, token_checked = _claim_first_runnable(principal, labels)
    if job is not None or token_checked:
        return job
    runner = current_runner(principal)
    live_labels = frozenset(runner.labels)
    if live_labels != labels and live_labels - labels:
        job, _ = _claim_first_runnable(principal, live_labels)
    return job


def poll_result(job: Job | None) -> PollResult:
    """The poll response: the claimed job in the `/api` dialect (or null) and when to poll again."""
    view = None
    if job is not None:
        view = ApiJob(_id=job.job_id, attempts=job.attempts, **work_fields(job), **log_fields(job))
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
) -> dict[str, dict[str, Any]]:
    org_id, runner_id = principal.org_id, principal.runner_id
    now = clock.iso()
    if status == "running":
        return {
            "job": job_store.job_update(
                org_id,
                job_id,
                set={"status": "running", "startedAt": now, "updatedAt": now},
                condition="#runnerId = :me AND #status = :assigned",
                values={"me": runner_id, "assigned": "assigned"},
            ).op(),
            "runner": job_store.runner_token_check_op(org_id, runner_id, principal.token_version),
        }
    finished: dict[str, Any] = {"status": status, "finishedAt": now, "updatedAt": now}
    if result is not None:
        finished["resultJson"] = result
    if status == "failed":
        finished["error"] = {"code": "job_failed", "message": error or "The runner reported the job failed"}
    runner_counts: dict[str, Any] = {"currentJobs": -1}
    if status == "completed":
        runner_counts["jobsCompleted"] = 1
    return {
        "job": job_store.job_update(
            org_id,
            job_id,
            set=finished,
            remove=("runnerKey", "dueShard", "dueAt"),
            condition="#runnerId = :me AND #status IN (:assigned, :running)",
            values={"me": runner_id, "assigned": "assigned", "running": "running"},
        ).op(),
        "runner": runner_store.runner_update(
            org_id,
            runner_id,
            add=runner_counts,
            delete={"heldJobs": {job_id}},
            condition=runner_store.TOKEN_GUARD,
            values={"tokenVersion": principal.token_version},
        ).op(),
        "org": job_store.org_release_job_op(org_id),
    }


def _acknowledge_cancel(principal: RunnerPrincipal, job_id: str) -> None:
    """The runner has heard that its job was cancelled: stop listing it in heartbeat responses."""
    ok, runner = apply(
        runner_store.runner_update(
            principal.org_id,
            principal.runner_id,
            delete={"cancelledJobs": {job_id}},
            condition=runner_store.TOKEN_GUARD,
            values={"tokenVersion": principal.token_version},
        ),
        return_new=False,
    )
    if not ok:
        raise runner_token_refused(runner)


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
    try:
        transact(_report_operations(principal, job_id, status, result_json, error))
    except TransactionCancelled as cancelled:
        if cancelled.conflict:
            # Other transitions (cancel, sweep) kept touching the job through every retry.
            raise Conflict(f"Job {job_id} is changing; retry the report", code="concurrent_update") from None
        return _explain_refusal(principal, job_id, status, cancelled)
    if status != "running":
        metrics.add_metric(name="JobsFinished", unit="Count", value=1)
    return StatusReport(job_id, status, cancel_requested=False)


def _explain_refusal(
    principal: RunnerPrincipal, job_id: str, status: ReportedStatus, cancelled: TransactionCancelled
) -> StatusReport:
    """A refused report, read from the failed conditions alone (ALL_OLD): no-op, cancelled, 404 or 409."""
    if cancelled["runner"].condition_failed:
        raise runner_token_refused(cancelled["runner"].item)
    current = job_store.job_from(cancelled["job"].item)
    if current is None or current.runner_id != principal.runner_id:
        raise NotFound(f"Job {job_id} not found")
    if current.status == "cancelled":
        _acknowledge_cancel(principal, job_id)
        return StatusReport(job_id, "cancelled", cancel_requested=True)
    if current.status == status:
        return StatusReport(job_id, status, cancel_requested=False)
    raise Conflict(f"Job {job_id} is {current.status}; it cannot become {status}", code="invalid_transition")
