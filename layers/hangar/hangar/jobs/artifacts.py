"""Artifacts: files a job's runner uploads (scan reports, plans, SARIF) and users download.

The runner declares each file (name, content type, size) and gets a presigned S3 PUT bound to that
size and type; the bytes go straight to S3. A declaration is accepted under the same rule as a log
chunk (`hangar.jobs.logs.held_job`): the job's runner, while it holds the job. At most
ArtifactsPerJob names per job; declaring a name again (a retried upload) replaces its declaration and
keeps its id, so a retry never uses up the limit. An artifact is listed once its object exists with
the declared size, with a presigned GET valid for 15 minutes.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Conflict, Forbidden, NotFound, PayloadTooLarge
from hangar.identity.auth import RunnerPrincipal
from hangar.jobs.logs import (
    WRITE_ATTEMPTS,
    HeldJob,
    WriteOutcome,
    held_condition,
    held_job,
    runner_guard_op,
    runner_may_write,
    transact_output,
)
from hangar.jobs.models.artifacts import ArtifactUpload, CreateArtifactRequest, V1Artifact, V1ArtifactList
from hangar.jobs.outputs import expired, expiry_epoch
from hangar.store import artifact_objects
from hangar.store import job_outputs as output_store
from hangar.store import jobs as job_store
from hangar.store.dynamo import Item, condition_check_op

UPLOAD_URL_SECONDS = 900
DOWNLOAD_URL_SECONDS = 900


def new_artifact_id() -> str:
    return f"art_{secrets.token_hex(8)}"


def _finished(job_id: str, status: str) -> Conflict:
    return Conflict(f"Job {job_id} is {status}: it takes no more artifacts", code="job_finished")


def _limit_reached(job_id: str, limit: int) -> Forbidden:
    return Forbidden(f"Job {job_id} already has {limit} artifacts, the most it may have", code="artifact_limit_reached")


def declare_artifact(principal: RunnerPrincipal, request: CreateArtifactRequest) -> ArtifactUpload:
    """Records the artifact and returns where to upload it (see the module docstring)."""
    settings = get_settings()
    if request.size > settings.artifact_max_bytes:
        raise PayloadTooLarge(
            f"size: {request.size} bytes; an artifact holds at most {settings.artifact_max_bytes} bytes", field="size"
        )
    job_id = request.jobId
    for _ in range(WRITE_ATTEMPTS):
        held = held_job(principal, job_id)
        if held.finished:
            runner_may_write(principal, job_id, cancelled=False)
            raise _finished(job_id, held.job.status)
        existing = output_store.get_artifact(principal.org_id, job_id, request.name)
        if existing is None and held.job.artifact_count >= settings.artifacts_per_job:
            if not runner_may_write(principal, job_id, held.cancelled):
                raise _finished(job_id, "cancelled")
            raise _limit_reached(job_id, settings.artifacts_per_job)
        now = clock.now()
        artifact: Item = {
            "jobKey": output_store.job_key(principal.org_id, job_id),
            "artifactId": existing["artifactId"] if existing else new_artifact_id(),
            "name": request.name,
            "contentType": request.contentType,
            "size": request.size,
            "createdAt": clock.iso(now),
            "expiresAtEpoch": expiry_epoch(now),
        }
        outcome = transact_output(principal, _declare_operations(principal, held, artifact, existing))
        if outcome is WriteOutcome.WRITTEN:
            return _upload(principal.org_id, job_id, artifact, now)
        if outcome is WriteOutcome.ACKNOWLEDGED:
            raise _finished(job_id, "cancelled")
    raise Conflict(f"Job {job_id} kept changing; try again", code="concurrent_update")


def _declare_operations(
    principal: RunnerPrincipal, held: HeldJob, artifact: Item, existing: Item | None
) -> dict[str, dict[str, Any]]:
    org_id, job_id = principal.org_id, held.job.job_id
    condition, values = held_condition(principal, held)
    if existing is None:
        # A new name: one more artifact on the job, only under the limit.
        job_op = job_store.job_update(
            org_id,
            job_id,
            add={"artifactCount": 1},
            condition=condition + " AND (attribute_not_exists(#artifactCount) OR #artifactCount < :most)",
            values={**values, "most": get_settings().artifacts_per_job},
        ).op()
    else:
        job_op = condition_check_op(job_store.table(), job_store.job_key(org_id, job_id), condition, values)
    record_op = output_store.put_artifact_op(artifact, replacing=existing is not None)
    return {"artifact": record_op, "job": job_op, "runner": runner_guard_op(principal, job_id, held.cancelled)}


def _upload(org_id: str, job_id: str, artifact: Item, now: float) -> ArtifactUpload:
    key = artifact_objects.artifact_key(org_id, job_id, artifact["artifactId"])
    size, content_type = int(artifact["size"]), str(artifact["contentType"])
    return ArtifactUpload(
        artifactId=artifact["artifactId"],
        uploadUrl=artifact_objects.presigned_put(key, size, content_type, UPLOAD_URL_SECONDS),
        headers={"Content-Type": content_type, "Content-Length": str(size)},
        expiresAt=clock.iso(now + UPLOAD_URL_SECONDS),
    )


# --- listing -------------------------------------------------------------------------------------------


def attachment(name: str) -> str:
    """A Content-Disposition that saves the download under its name (RFC 6266, with an ASCII fallback)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def list_artifacts(org_id: str, job_id: str) -> V1ArtifactList:
    """The job's uploaded artifacts (those whose object has the declared size), with download URLs."""
    if job_store.get_job(org_id, job_id) is None:
        raise NotFound(f"Job {job_id} not found")
    now = clock.now()
    records = [
        record for record in output_store.list_artifacts(org_id, job_id) if not expired(record["expiresAtEpoch"], now)
    ]
    if not records:
        return V1ArtifactList(artifacts=[])
    sizes = artifact_objects.object_sizes(org_id, job_id)
    artifacts: list[V1Artifact] = []
    for record in sorted(records, key=lambda item: (str(item["createdAt"]), str(item["name"]))):
        key = artifact_objects.artifact_key(org_id, job_id, record["artifactId"])
        if sizes.get(key) != int(record["size"]):
            continue  # not uploaded yet, or not (yet) with the declared size
        artifacts.append(
            V1Artifact(
                id=record["artifactId"],
                name=record["name"],
                contentType=record["contentType"],
                size=int(record["size"]),
                createdAt=record["createdAt"],
                downloadUrl=artifact_objects.presigned_get(key, DOWNLOAD_URL_SECONDS, attachment(record["name"])),
                downloadExpiresAt=clock.iso(now + DOWNLOAD_URL_SECONDS),
            )
        )
    return V1ArtifactList(artifacts=artifacts)
