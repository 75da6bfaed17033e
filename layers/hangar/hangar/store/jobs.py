"""The Jobs table (`orgId` + `jobId`) and its sparse indexes, plus the runner and org counter updates
that job transitions make in the same transaction.

Indexes (template.yaml):
- QueueByOrg (queueOrg, queuedAt), ALL: queued jobs only, oldest first per tenant.
- ActiveByRunner (runnerKey, jobId), KEYS_ONLY: assigned/running jobs by "<orgId>#<runnerId>".
- DueByDeadline (dueShard, dueAt), KEYS_ONLY: queued (queue timeout) and active (run timeout) jobs.

Updates are built with `hangar.store.dynamo.Update` (expressions name every attribute `#name`).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from hangar.core.config import get_settings
from hangar.store import orgs
from hangar.store import runners as runner_store
from hangar.store.dynamo import (
    Item,
    Raw,
    Update,
    backoff,
    client,
    condition_check_op,
    delete_op,
    from_item,
    query_page,
    query_pages,
)
from hangar.store.records import Record, unwritten
from hangar.store.transactions import put_new_with

JOB_KEY_NAMES = {"orgId", "jobId"}
QUEUE_INDEX = "QueueByOrg"
ACTIVE_INDEX = "ActiveByRunner"
DUE_INDEX = "DueByDeadline"

# Deadlines are sharded like live runners (INDEX_SHARDS), so a large backlog of due jobs spreads over
# partitions and the sweeper reads each shard's due range only.


@dataclass(frozen=True, slots=True)
class Job(Record):
    """A job item: what every job has from its creation, then the defaults of what an item may lack (the
    log and artifact counters are `unwritten`: absent until the first chunk or artifact writes them)."""

    org_id: str
    job_id: str
    type: str
    status: str
    timeout_seconds: int
    queue_timeout_seconds: int
    created_at: str
    updated_at: str
    repository_config: str | None = None
    repository_name: str | None = None
    branch: str | None = None
    target_id: str | None = None
    labels: tuple[str, ...] = ()
    pinned_runner_id: str | None = None
    payload_json: str | None = None  # the payload as compact JSON text (hangar.jobs.documents)
    max_attempts: int = 1
    attempts: int = 0  # counted at claim
    runner_id: str | None = None
    runner_key: str | None = None  # the ActiveByRunner partition, while held
    assigned_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result_json: str | None = None
    error: dict[str, Any] | None = None  # {"code", "message"} of a failed or expired job
    cancel_requested: bool = unwritten(False)
    queue_sort_key: str | None = None  # kept for life: a recovered job goes back to its place
    queue_org: str | None = None  # the QueueByOrg partition, while queued
    queued_at: str | None = None
    due_shard: str | None = None  # the DueByDeadline partition and deadline, while queued or held
    due_at: int | None = None
    log_attempt: int | None = None  # the run (attempts) whose chunks the log counters count
    log_next_seq: int = unwritten(0)
    log_bytes: int = unwritten(0)
    log_truncated: bool = unwritten(False)
    log_expires_at_epoch: int | None = None
    artifact_count: int = unwritten(0)


def job_from(item: Item | None) -> Job | None:
    return None if item is None else Job.from_item(item)


def table() -> str:
    return get_settings().jobs_table


def job_key(org_id: str, job_id: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "jobId": {"S": job_id}}


def due_shards() -> list[str]:
    return [f"due#{index}" for index in range(get_settings().index_shards)]


def due_shard(job_id: str) -> str:
    """The DueByDeadline partition of a job."""
    return f"due#{zlib.crc32(job_id.encode()) % get_settings().index_shards}"


def runner_key(org_id: str, runner_id: str) -> str:
    """The ActiveByRunner partition of a runner's held jobs."""
    return f"{org_id}#{runner_id}"


# --- jobs -------------------------------------------------------------------------------------------


def put_job(job: Job, also: Mapping[str, dict[str, Any]]) -> None:
    """Stores a new job in one transaction with `also` (its audit event)."""
    put_new_with(table(), job.to_item(), "jobId", also)


def get_job(org_id: str, job_id: str) -> Job | None:
    response = client().get_item(TableName=table(), Key=job_key(org_id, job_id), ConsistentRead=True)
    return job_from(from_item(response.get("Item")))


def job_update(org_id: str, job_id: str, **kwargs: Any) -> Update:
    return Update(table=table(), key=job_key(org_id, job_id), **kwargs)


# A list page reads at most this many DynamoDB pages while filters drop items, then hands back a cursor.
LIST_MAX_READS = 10


def list_jobs(
    org_id: str, limit: int, cursor: str | None, status: str | None = None, runner_id: str | None = None
) -> tuple[list[Job], str | None]:
    """The tenant's jobs, newest first (job ids sort by creation time), optionally filtered. Strongly
    consistent: a job just created or cancelled is listed as it is."""
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org",
        "ExpressionAttributeValues": {":org": {"S": org_id}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
        "Limit": limit,
    }
    filters: list[str] = []
    if status:
        filters.append("#status = :status")
        params["ExpressionAttributeValues"][":status"] = {"S": status}
    if runner_id:
        filters.append("(runnerId = :runner OR pinnedRunnerId = :runner)")
        params["ExpressionAttributeValues"][":runner"] = {"S": runner_id}
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
        if status:
            params["ExpressionAttributeNames"] = {"#status": "status"}
    items, next_cursor = query_page(params, cursor, JOB_KEY_NAMES, ("orgId", org_id), max_reads=LIST_MAX_READS)
    return [Job.from_item(item) for item in items], next_cursor


def queued_job_pages(org_id: str, page_size: int) -> Iterator[list[Job]]:
    """The tenant's queued jobs, oldest first, a page at a time (eventually consistent: the claim's
    condition has the last word). The caller stops reading when it has what it needs."""
    params: dict[str, Any] = {
        "TableName": table(),
        "IndexName": QUEUE_INDEX,
        "KeyConditionExpression": "queueOrg = :org",
        "ExpressionAttributeValues": {":org": {"S": org_id}},
        "ScanIndexForward": True,
        "Limit": page_size,
    }
    for page in query_pages(params):
        yield [Job.from_item(item) for item in map(from_item, page) if item is not None]


def get_jobs(org_id: str, job_ids: list[str]) -> list[Job]:
    """The tenant's jobs with these ids that exist, read strongly consistent (BatchGetItem, 100 a call)."""
    found: list[Job] = []
    for start in range(0, len(job_ids), 100):
        request: dict[str, Any] = {
            table(): {
                "Keys": [job_key(org_id, job_id) for job_id in job_ids[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        for attempt in itertools.count():
            response = client().batch_get_item(RequestItems=request)
            items = map(from_item, response.get("Responses", {}).get(table(), []))
            found.extend(Job.from_item(item) for item in items if item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            # Keys DynamoDB left unread (throttled, or past 16 MB): asked again after a jittered backoff,
            # as DynamoDB's documentation asks, rather than at once into the same throttling.
            backoff(attempt)
    return found


def active_job_ids(org_id: str, runner_id: str) -> list[str]:
    """Ids of the jobs a runner holds (assigned or running) by the ActiveByRunner index, every page.
    Eventually consistent, so recovery reads the runner's `heldJobs` instead (hangar.jobs.recovery)."""
    params: dict[str, Any] = {
        "TableName": table(),
        "IndexName": ACTIVE_INDEX,
        "KeyConditionExpression": "runnerKey = :rk",
        "ExpressionAttributeValues": {":rk": {"S": runner_key(org_id, runner_id)}},
    }
    return [raw["jobId"]["S"] for page in query_pages(params) for raw in page]


@dataclass(frozen=True)
class DueJob:
    org_id: str
    job_id: str
    due_at: Raw  # as stored, so the transition is conditional on exactly the deadline that was read


def due_jobs(shard: str, now_epoch: int, page_size: int) -> Iterator[list[DueJob]]:
    """Pages of at most `page_size` jobs in `shard` whose deadline has passed, the longest due first
    (reads nothing that is not due)."""
    params: dict[str, Any] = {
        "TableName": table(),
        "IndexName": DUE_INDEX,
        "Limit": page_size,
        "KeyConditionExpression": "dueShard = :shard AND dueAt <= :now",
        "ExpressionAttributeValues": {":shard": {"S": shard}, ":now": {"N": str(now_epoch)}},
    }
    for page in query_pages(params):
        yield [DueJob(org_id=raw["orgId"]["S"], job_id=raw["jobId"]["S"], due_at=Raw(raw["dueAt"])) for raw in page]


# --- the runner and org counters a job transition moves with it -------------------------------------


def runner_delete_op(org_id: str, runner_id: str, condition: str, vals: dict[str, Any]) -> dict[str, Any]:
    return delete_op(runner_store.table(), runner_store.runner_key(org_id, runner_id), condition, vals)


def runner_token_check_op(org_id: str, runner_id: str, token_version: int) -> dict[str, Any]:
    """Fails the transaction when the caller's runner token was regenerated or the runner deleted."""
    return condition_check_op(
        runner_store.table(),
        runner_store.runner_key(org_id, runner_id),
        runner_store.TOKEN_GUARD,
        {"tokenVersion": token_version},
    )


def org_job_slot_op(org_id: str) -> dict[str, Any]:
    """One more active job for the tenant: only under its concurrent-job limit and with an active license."""
    return orgs.org_update(
        org_id,
        add={"activeJobs": 1},
        condition="#activeJobs < #concurrentJobLimit AND #licenseState = :active",
        values={"active": "active"},
    ).op()


def org_release_job_op(org_id: str) -> dict[str, Any]:
    return orgs.org_update(org_id, add={"activeJobs": -1}, condition="attribute_exists(#orgId)").op()


# --- Powertools idempotency store for job creation ----------------------------------------------------


def idempotency_layer() -> DynamoDBPersistenceLayer:
    """The Idempotency-Key records of job creation (Settings.idempotency_table), on Hangar's client."""
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client())
