"""Jobs as users see them: create (optionally idempotent), list, get, cancel; and the `/v1` view.

How a job moves (docs/architecture.md, "The lifecycle"): queued → assigned → running → completed | failed | cancelled;
queued → cancelled | expired; assigned|running → queued (runner lost, attempts left) or failed.
Claims and status reports are in `hangar.jobs.claims`; recovery and deadlines in `hangar.jobs.recovery`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.errors import BadRequest, Conflict, Forbidden, NotFound
from hangar.core.models import unique
from hangar.core.plans import License
from hangar.jobs.documents import bounded_json, parse_json, work_fields
from hangar.jobs.models.jobs import ACTIVE_STATUSES, MAX_PAYLOAD_BYTES, CreateJobRequest, JobError, JobStatus, V1Job
from hangar.jobs.outputs import log_fields
from hangar.store import jobs as job_store
from hangar.store import orgs
from hangar.store import runners as runner_store
from hangar.store.dynamo import Item
from hangar.store.jobs import Job
from hangar.store.transactions import TransactionCancelled, transact
from hangar.tenancy.targets import get_target, visibility_allowed

# A retried create with the same Idempotency-Key returns the first job for this long.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# Optimistic transitions retry this often when the job moved between read and write.
CANCEL_ATTEMPTS = 5


def new_job_id() -> str:
    """`job_` + creation time in milliseconds (12 hex) + 8 random hex: ids sort by creation time."""
    return f"job_{int(clock.now() * 1000):012x}{secrets.token_hex(4)}"


def v1_view(job: Job) -> V1Job:
    return V1Job(
        id=job.job_id,
        status=cast(JobStatus, job.status),  # as stored: the view validates it
        **work_fields(job),
        runnerId=job.runner_id or job.pinned_runner_id,
        pinnedRunnerId=job.pinned_runner_id,
        attempts=job.attempts,
        result=parse_json(job.result_json),
        error=JobError(**job.error) if job.error is not None else None,
        queueTimeoutSeconds=job.queue_timeout_seconds,
        cancelRequested=job.cancel_requested,
        **log_fields(job),
        createdAt=job.created_at,
        updatedAt=job.updated_at,
        assignedAt=job.assigned_at,
        startedAt=job.started_at,
        finishedAt=job.finished_at,
    )


# --- create ----------------------------------------------------------------------------------------


def _check_target(org_id: str, target_id: str, license_: License) -> None:
    try:
        target = get_target(org_id, target_id)
    except NotFound:
        raise NotFound(f"Target {target_id} not found", field="targetId") from None
    visibility = target.visibility
    if not visibility_allowed(license_, visibility):
        raise Forbidden(f"The {license_.plan} plan does not allow {visibility} targets", code="visibility_not_allowed")


def _check_pin(org_id: str, runner_id: str, labels: list[str]) -> None:
    runner = runner_store.get_runner(org_id, runner_id)
    if runner is None:
        raise NotFound(f"Runner {runner_id} not found", field="runnerId")
    missing = sorted(set(labels) - set(runner.labels))
    if missing:
        raise BadRequest(f"runnerId: runner {runner_id} lacks labels {', '.join(missing)}", field="runnerId")


def new_job(org_id: str, request: CreateJobRequest) -> Job:
    """A queued job: in the tenant's queue and with its queue deadline."""
    now = clock.now()
    created_at = clock.iso(now)
    job_id = new_job_id()
    queue_sort_key = f"{created_at}#{job_id}"
    return Job(
        org_id=org_id,
        job_id=job_id,
        type=request.type,
        repository_config=request.repositoryConfig,
        repository_name=request.repositoryName,
        branch=request.branch,
        target_id=request.targetId,
        labels=tuple(unique(request.labels)),
        pinned_runner_id=request.runnerId,
        payload_json=None if request.payload is None else bounded_json(request.payload, MAX_PAYLOAD_BYTES, "payload"),
        timeout_seconds=request.timeoutSeconds,
        queue_timeout_seconds=request.queueTimeoutSeconds,
        max_attempts=request.maxAttempts,
        attempts=0,
        status="queued",
        created_at=created_at,
        updated_at=created_at,
        # Kept for life: a recovered job goes back to the queue at its original place.
        queue_sort_key=queue_sort_key,
        queue_org=org_id,
        queued_at=queue_sort_key,
        due_shard=job_store.due_shard(job_id),
        due_at=math.ceil(now + request.queueTimeoutSeconds),
    )


def _create_job(org_id: str, request: CreateJobRequest) -> Job:
    job = new_job(org_id, request)  # validates the payload before any read
    # Read-only: a tenant never seen gets the default plan's license without an org write here.
    license_ = orgs.org_or_default(org_id).license()
    if not license_.active:
        raise Forbidden(f"The license is {license_.licenseState}", code="license_inactive")
    if request.targetId is not None:
        _check_target(org_id, request.targetId, license_)
    if request.runnerId is not None:
        _check_pin(org_id, request.runnerId, list(job.labels))
    job_store.put_job(job, also={"audit": audit.operation("job.create", org_id, "job", job.job_id)})
    return job


@dataclass(frozen=True)
class _Replayed:
    """What the idempotent create returns for a retry: the first job, marked by the response hook."""

    job: Job


def _mark_replay(response: Any, idempotent_data: DataRecord) -> _Replayed:
    """Powertools' response_hook: runs only when a completed record answers the call (a replay)."""
    return _Replayed(Job.from_item(response))


# Built once per process, as the Powertools docs build them; the persistence layer on the first keyed
# create (it needs the settings and the DynamoDB client), so a create without a key never builds it.
IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="[orgId, idempotencyKey]",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    response_hook=_mark_replay,
)


def _create_once(*, call: dict[str, Any], org_id: str, request: CreateJobRequest) -> Item:
    """The create behind an Idempotency-Key; `call` (tenant, key and body) is what the record is keyed
    and validated on. It returns the job's item, which the idempotency record stores as JSON."""
    return _create_job(org_id, request).to_item()


@cache
def _idempotent_create() -> Callable[..., Item | _Replayed]:
    """The create behind the Idempotency-Key records (tests forget it with the DynamoDB client)."""
    created: Callable[..., Item | _Replayed] = idempotent_function(
        _create_once,
        data_keyword_argument="call",
        persistence_store=job_store.idempotency_layer(),
        config=IDEMPOTENCY_CONFIG,
        key_prefix="hangar.create_job",
    )
    return created


def create_job(
    org_id: str, request: CreateJobRequest, idempotency_key: str | None = None, lambda_context: Any = None
) -> tuple[Job, bool]:
    """A new queued job, and whether it is a replay. With an Idempotency-Key, a retry of the same request
    within 24 h returns the first job (Powertools idempotency, keyed on tenant + key); the same key with
    a different body is a 409 `idempotency_key_reused`, and a retry while the first is still being
    created a 409 `idempotency_in_progress`."""
    if idempotency_key is None:
        return _create_job(org_id, request), False
    # This invocation's context: one that dies mid-create frees the key when its time is up, not after
    # 24 h (None, outside Lambda: no earlier expiry).
    IDEMPOTENCY_CONFIG.lambda_context = lambda_context
    call = {"orgId": org_id, "idempotencyKey": idempotency_key, "request": request.model_dump(mode="json")}
    try:
        result = _idempotent_create()(call=call, org_id=org_id, request=request)
    except IdempotencyValidationError:
        raise Conflict(
            "This Idempotency-Key was used with a different request body",
            code="idempotency_key_reused",
            field="idempotency-key",
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress", code="idempotency_in_progress"
        ) from None
    if isinstance(result, _Replayed):
        return result.job, True
    return Job.from_item(result), False


# --- read ------------------------------------------------------------------------------------------


def get_job(org_id: str, job_id: str) -> Job:
    job = job_store.get_job(org_id, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found")
    return job


def list_jobs(
    org_id: str, limit: int, cursor: str | None, status: str | None = None, runner_id: str | None = None
) -> tuple[list[Job], str | None]:
    """A page of the tenant's jobs, newest first. The handler's way to the store, which handlers never
    import (docs/conventions.md); domain code pages the store itself."""
    return job_store.list_jobs(org_id, limit, cursor, status=status, runner_id=runner_id)


# --- cancel ----------------------------------------------------------------------------------------


def _cancelled_audit(job: Job) -> dict[str, Any]:
    return audit.operation("job.cancel", job.org_id, "job", job.job_id)


def _cancel_queued(job: Job, now: str) -> Job | None:
    """queued → cancelled in one transaction with the audit event; None when it was no longer queued."""
    removed = ("queueOrg", "queuedAt", "dueShard", "dueAt")
    update = job_store.job_update(
        job.org_id,
        job.job_id,
        set={"status": "cancelled", "updatedAt": now, "finishedAt": now},
        remove=removed,
        condition="#status = :queued",
        values={"queued": "queued"},
    )
    try:
        transact({"job": update.op(), "audit": _cancelled_audit(job)})
    except TransactionCancelled as cancelled:
        if cancelled["job"].condition_failed:
            return None
        raise
    return replace(
        job,
        status="cancelled",
        updated_at=now,
        finished_at=now,
        queue_org=None,
        queued_at=None,
        due_shard=None,
        due_at=None,
    )


def _cancel_active(job: Job, now: str, release_runner: bool) -> tuple[bool, bool]:
    """Cancels a held job at once, freeing its slot and telling its runner (cancelledJobs).
    Returns (done, runner_exists)."""
    org_id, job_id, runner_id = job.org_id, job.job_id, str(job.runner_id)
    operations = {
        "job": job_store.job_update(
            org_id,
            job_id,
            set={"status": "cancelled", "cancelRequested": True, "updatedAt": now, "finishedAt": now},
            remove=("runnerKey", "dueShard", "dueAt"),
            condition="#status = :seen AND #runnerKey = :rk",
            values={"seen": job.status, "rk": job_store.runner_key(org_id, runner_id)},
        ).op(),
        "org": job_store.org_release_job_op(org_id),
        "audit": _cancelled_audit(job),
    }
    if release_runner:
        operations["runner"] = runner_store.runner_update(
            org_id,
            runner_id,
            add={"currentJobs": -1, "cancelledJobs": {job_id}},
            delete={"heldJobs": {job_id}},
            set={"updatedAt": now},
            condition="attribute_exists(#runnerId)",
        ).op()
    try:
        transact(operations)
    except TransactionCancelled as cancelled:
        # Only a condition that found no runner means it is gone (a runner stored before deletion
        # released its jobs); a conflict returns no item either, and is not a deletion.
        return False, not (release_runner and cancelled["runner"].missing)
    return True, True


def cancel_job(org_id: str, job_id: str) -> Job:
    """queued → cancelled; assigned|running → cancelled at once (slot freed, runner told in its next
    heartbeat and status report). Cancelling a cancelled job is a no-op; a finished job is a 409."""
    release_runner = True
    for _ in range(CANCEL_ATTEMPTS):
        job = get_job(org_id, job_id)
        status = job.status
        now = clock.iso()
        if status == "cancelled":
            return job
        if status == "queued":
            cancelled = _cancel_queued(job, now)
            if cancelled is not None:
                return cancelled
            continue
        if status in ACTIVE_STATUSES:
            done, release_runner = _cancel_active(job, now, release_runner)
            if done:
                return replace(
                    job,
                    status="cancelled",
                    cancel_requested=True,
                    updated_at=now,
                    finished_at=now,
                    runner_key=None,
                    due_shard=None,
                    due_at=None,
                )
            continue
        raise Conflict(f"Job {job_id} is {status} and can no longer be cancelled", code="invalid_transition")
    raise Conflict(f"Job {job_id} kept changing; try again", code="concurrent_update")
