"""Helpers shared by the job tests (imported as `jobs_helpers`): runners that heartbeat, jobs, polls, reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hangar.store import dynamo
from support import FakeLambdaContext, handler_module, invoke, load_event, runner_event, user_event


def set_license(org: str, plan: str = "enterprise", **fields: Any) -> None:
    """The operator's PUT /v1/orgs/{org}/license (plan, licenseState, overrides)."""
    status, body, _ = invoke(
        "PutOrgLicense",
        user_event("PutOrgLicense", "operators", body={"plan": plan, **fields}, path_params={"orgId": org}),
    )
    assert status == 200, body


def create_runner(org: str, labels: list[str] | None = None, concurrency: int = 1, name: str = "runner") -> str:
    body = {"name": name, "labels": labels or [], "configuredConcurrency": concurrency}
    status, response, _ = invoke("CreateRunner", user_event("CreateRunner", org, body=body))
    assert status == 201, response
    runner_id: str = response["data"]["_id"]
    return runner_id


def heartbeat(org: str, runner_id: str, token_version: int = 1, status: str = "online") -> dict[str, Any]:
    code, body, _ = invoke(
        "Heartbeat", runner_event("Heartbeat", org, runner_id, token_version, body={"status": status})
    )
    assert code == 200, body
    data: dict[str, Any] = body["data"]
    return data


def live_runner(org: str, labels: list[str] | None = None, concurrency: int = 1, name: str = "runner") -> str:
    """A runner that has heartbeated, so it may claim jobs."""
    runner_id = create_runner(org, labels, concurrency, name)
    heartbeat(org, runner_id)
    return runner_id


def create_job(org: str, headers: dict[str, str] | None = None, scopes: str | None = None, **fields: Any) -> Any:
    body = {"type": "scan", "repositoryConfig": "abc123", "repositoryName": "org/infra", "branch": "main", **fields}
    event = user_event("CreateJob", org, body=body, **({"scopes": scopes} if scopes else {}))
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    return invoke("CreateJob", event)


def new_job(org: str, **fields: Any) -> dict[str, Any]:
    status, body, _ = create_job(org, **fields)
    assert status == 201, body
    job: dict[str, Any] = body
    return job


def poll(org: str, runner_id: str, labels: list[str] | None = None, token_version: int = 1) -> tuple[int, Any]:
    event = runner_event("PollJob", org, runner_id, token_version, labels=",".join(labels or []), body="{}")
    status, body, _ = invoke("PollJob", event)
    return status, body


def polled_job(org: str, runner_id: str, labels: list[str] | None = None) -> dict[str, Any] | None:
    status, body = poll(org, runner_id, labels)
    assert status == 200, body
    job: dict[str, Any] | None = body["data"]["job"]
    return job


def report(
    org: str, runner_id: str, job_id: str, status: str, token_version: int = 1, **fields: Any
) -> tuple[int, Any]:
    event = runner_event(
        "UpdateJobStatus", org, runner_id, token_version, body={"jobId": job_id, "status": status, **fields}
    )
    code, body, _ = invoke("UpdateJobStatus", event)
    return code, body


def get_job(org: str, job_id: str) -> dict[str, Any]:
    status, body, _ = invoke("GetJob", user_event("GetJob", org, path_params={"jobId": job_id}))
    assert status == 200, body
    job: dict[str, Any] = body
    return job


def cancel(org: str, job_id: str, scopes: str | None = None) -> tuple[int, Any]:
    event = user_event("CancelJob", org, path_params={"jobId": job_id}, **({"scopes": scopes} if scopes else {}))
    status, body, _ = invoke("CancelJob", event)
    return status, body


def sweep() -> dict[str, Any]:
    summary: dict[str, Any] = handler_module("Sweeper").handler(load_event("Sweeper"), FakeLambdaContext())
    return summary


def runner_item(org: str, runner_id: str) -> dict[str, Any]:
    raw = dynamo.client().get_item(
        TableName="RunnersTable", Key={"orgId": {"S": org}, "runnerId": {"S": runner_id}}, ConsistentRead=True
    )
    item = dynamo.from_item(raw.get("Item"))
    assert item is not None
    return item


def org_item(org: str) -> dict[str, Any]:
    raw = dynamo.client().get_item(TableName="OrgsTable", Key={"orgId": {"S": org}, "sk": {"S": "ORG"}})
    item = dynamo.from_item(raw.get("Item"))
    assert item is not None
    return item


@contextmanager
def dynamodb_calls() -> Iterator[list[str]]:
    """Names of the DynamoDB API calls made inside the block (botocore 'before-call' hook)."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = dynamo.client().meta.events
    events.register("before-call.dynamodb", record)
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", record)
