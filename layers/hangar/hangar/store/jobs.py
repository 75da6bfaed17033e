"""The Jobs table (`orgId` + `jobId`) and its sparse indexes, plus the runner and org counter updates
that job transitions make in the same transaction.

Indexes (template.yaml):
- QueueByOrg (queueOrg, queuedAt), ALL: queued jobs only, oldest first per tenant.
- ActiveByRunner (runnerKey, jobId), KEYS_ONLY: assigned/running jobs by "<orgId>#<runnerId>".
- DueByDeadline (dueShard, dueAt), KEYS_ONLY: queued (queue timeout) and active (run timeout) jobs.

Expressions here write every attribute name as `#name`; `Update` maps the placeholders itself, so
reserved words (status, error, result) need no special care at the call sites.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from hangar.core.config import get_settings
from hangar.store import dynamo, orgs
from hangar.store import runners as runner_store
from hangar.store.dynamo import (
    Item,
    client,
    decode_cursor,
    encode_cursor,
    from_item,
    put_new_with,
    serialize,
)

JOB_KEY_NAMES = {"orgId", "jobId"}
QUEUE_INDEX = "QueueByOrg"
ACTIVE_INDEX = "ActiveByRunner"
DUE_INDEX = "DueByDeadline"

# Deadlines are sharded like live runners (INDEX_SHARDS), so a large backlog of due jobs spreads over
# partitions and the sweeper reads each shard's due range only.

_PLACEHOLDER = re.compile(r"#([A-Za-z0-9_]+)")


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


@dataclass(frozen=True)
class Raw:
    """A value already in DynamoDB's wire format (e.g. a number read from an index, compared as read)."""

    value: dict[str, Any]


@dataclass
class Update:
    """One UpdateItem (alone or inside a transaction), built from plain Python values."""

    table: str
    key: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)
    set_expressions: list[str] = field(default_factory=list)  # e.g. "#queuedAt = #queueSortKey"
    add: dict[str, Any] = field(default_factory=dict)
    delete: dict[str, Any] = field(default_factory=dict)  # set members to remove
    remove: tuple[str, ...] = ()
    condition: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # for condition and set_expressions

    def params(self) -> dict[str, Any]:
        clauses: list[str] = []
        vals: dict[str, Any] = {}
        sets = [f"#{name} = :set_{name}" for name in self.set] + list(self.set_expressions)
        vals.update({f":set_{name}": value for name, value in self.set.items()})
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if self.add:
            clauses.append("ADD " + ", ".join(f"#{name} :add_{name}" for name in self.add))
            vals.update({f":add_{name}": value for name, value in self.add.items()})
        if self.delete:
            clauses.append("DELETE " + ", ".join(f"#{name} :del_{name}" for name in self.delete))
            vals.update({f":del_{name}": value for name, value in self.delete.items()})
        if self.remove:
            clauses.append("REMOVE " + ", ".join(f"#{name}" for name in self.remove))
        vals.update({f":{name}": value for name, value in self.values.items()})
        expression = " ".join(clauses)
        names = set(_PLACEHOLDER.findall(expression)) | set(_PLACEHOLDER.findall(self.condition or ""))
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key,
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {f"#{name}": name for name in sorted(names)},
        }
        if vals:
            params["ExpressionAttributeValues"] = {
                name: value.value if isinstance(value, Raw) else serialize(value) for name, value in vals.items()
            }
        if self.condition:
            params["ConditionExpression"] = self.condition
        return params

    def op(self) -> dict[str, Any]:
        return {"Update": self.params()}


def _keyed_op(kind: str, table_name: str, key: dict[str, Any], condition: str, vals: dict[str, Any]) -> dict[str, Any]:
    """A TransactWriteItems ConditionCheck or Delete of one item under `condition` (`#name` placeholders)."""
    names = set(_PLACEHOLDER.findall(condition))
    params: dict[str, Any] = {"TableName": table_name, "Key": key, "ConditionExpression": condition}
    if names:
        params["ExpressionAttributeNames"] = {f"#{name}": name for name in sorted(names)}
    if vals:
        params["ExpressionAttributeValues"] = {
            f":{name}": value.value if isinstance(value, Raw) else serialize(value) for name, value in vals.items()
        }
    return {kind: params}


def condition_check_op(table_name: str, key: dict[str, Any], condition: str, vals: dict[str, Any]) -> dict[str, Any]:
    return _keyed_op("ConditionCheck", table_name, key, condition, vals)


def apply(update: Update, return_new: bool = True) -> tuple[bool, Item | None]:
    """Runs one UpdateItem: (True, the item after — None unless `return_new`) or, when its condition
    fails, (False, the item as it was — None when there is none)."""
    return dynamo.update(update.params(), return_new)


# --- jobs -------------------------------------------------------------------------------------------


def put_job(job: Item, also: Mapping[str, dict[str, Any]]) -> None:
    """Stores a new job in one transaction with `also` (its audit event)."""
    put_new_with(table(), job, "jobId", also)


def get_job(org_id: str, job_id: str) -> Item | None:
    response = client().get_item(TableName=table(), Key=job_key(org_id, job_id), ConsistentRead=True)
    return from_item(response.get("Item"))


def job_update(org_id: str, job_id: str, **kwargs: Any) -> Update:
    return Update(table=table(), key=job_key(org_id, job_id), **kwargs)


# A list page reads at most this many DynamoDB pages while filters drop items, then hands back a cursor.
LIST_MAX_READS = 10


def list_jobs(
    org_id: str, limit: int, cursor: str | None, status: str | None = None, runner_id: str | None = None
) -> tuple[list[Item], str | None]:
    """The tenant's jobs, newest first (job ids sort by creation time), optionally filtered. Strongly
    consistent: a job just created or cancelled is listed as it is."""
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org",
        "ExpressionAttributeValues": {":org": {"S": org_id}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
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
    start = decode_cursor(cursor, JOB_KEY_NAMES, ("orgId", org_id))
    if start is not None:
        params["ExclusiveStartKey"] = start
    items: list[Item] = []
    last_key: dict[str, Any] | None = None
    for _ in range(LIST_MAX_READS):
        response = client().query(**params, Limit=limit)
        page = response.get("Items", [])
        wanted = limit - len(items)
        if len(page) > wanted:
            # More matches than the list needs: the next page resumes after the last one returned.
            page = page[:wanted]
            items.extend(item for item in (from_item(raw) for raw in page) if item is not None)
            last_key = {"orgId": page[-1]["orgId"], "jobId": page[-1]["jobId"]}
            break
        items.extend(item for item in (from_item(raw) for raw in page) if item is not None)
        last_key = response.get("LastEvaluatedKey")
        if last_key is None or len(items) == limit:
            break
        params["ExclusiveStartKey"] = last_key
    return items, encode_cursor(last_key)


def queued_job_pages(org_id: str, page_size: int) -> Iterator[list[Item]]:
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
    while True:
        response = client().query(**params)
        yield [item for item in (from_item(raw) for raw in response.get("Items", [])) if item is not None]
        if "LastEvaluatedKey" not in response:
            return
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def get_jobs(org_id: str, job_ids: list[str]) -> list[Item]:
    """The tenant's jobs with these ids that exist, read strongly consistent (BatchGetItem, 100 a call)."""
    found: list[Item] = []
    for start in range(0, len(job_ids), 100):
        request: dict[str, Any] = {
            table(): {
                "Keys": [job_key(org_id, job_id) for job_id in job_ids[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        while request:
            response = client().batch_get_item(RequestItems=request)
            found.extend(item for item in map(from_item, response.get("Responses", {}).get(table(), [])) if item)
            request = response.get("UnprocessedKeys") or {}
    return found


def active_job_ids(org_id: str, runner_id: str) -> list[str]:
    """Ids of the jobs a runner holds (assigned or running) by the ActiveByRunner index, every page.
    Eventually consistent, so recovery reads the runner's `heldJobs` instead (hangar.jobs.recovery)."""
    ids: list[str] = []
    params: dict[str, Any] = {
        "TableName": table(),
        "IndexName": ACTIVE_INDEX,
        "KeyConditionExpression": "runnerKey = :rk",
        "ExpressionAttributeValues": {":rk": {"S": runner_key(org_id, runner_id)}},
    }
    while True:
        response = client().query(**params)
        ids.extend(raw["jobId"]["S"] for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return ids
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


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
    while True:
        response = client().query(**params)
        yield [
            DueJob(org_id=raw["orgId"]["S"], job_id=raw["jobId"]["S"], due_at=Raw(raw["dueAt"]))
            for raw in response.get("Items", [])
        ]
        if "LastEvaluatedKey" not in response:
            return
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- the runner and org counters a job transition moves with it -------------------------------------


def runner_update(org_id: str, runner_id: str, **kwargs: Any) -> Update:
    return Update(table=runner_store.table(), key=runner_store.runner_key(org_id, runner_id), **kwargs)


def runner_delete_op(org_id: str, runner_id: str, condition: str, vals: dict[str, Any]) -> dict[str, Any]:
    return _keyed_op("Delete", runner_store.table(), runner_store.runner_key(org_id, runner_id), condition, vals)


def runner_token_check_op(org_id: str, runner_id: str, token_version: int) -> dict[str, Any]:
    """Fails the transaction when the caller's runner token was regenerated or the runner deleted."""
    return condition_check_op(
        runner_store.table(),
        runner_store.runner_key(org_id, runner_id),
        runner_store.TOKEN_GUARD,
        {"tokenVersion": token_version},
    )


def org_update(org_id: str, **kwargs: Any) -> Update:
    return Update(table=orgs.table(), key=orgs.org_key(org_id), **kwargs)


def org_job_slot_op(org_id: str) -> dict[str, Any]:
    """One more active job for the tenant: only under its concurrent-job limit and with an active license."""
    return org_update(
        org_id,
        add={"activeJobs": 1},
        condition="#activeJobs < #concurrentJobLimit AND #licenseState = :active",
        values={"active": "active"},
    ).op()


def org_release_job_op(org_id: str) -> dict[str, Any]:
    return org_update(org_id, add={"activeJobs": -1}, condition="attribute_exists(#orgId)").op()


# --- Powertools idempotency store for job creation ----------------------------------------------------


def idempotency_layer() -> DynamoDBPersistenceLayer:
    """The Idempotency-Key records of job creation (Settings.idempotency_table), on Hangar's client."""
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client())
