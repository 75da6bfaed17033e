"""The job routes a test is about, called in-process (imported as `jobs_helpers`): polls, reports, cancels,
the sweeper, and the stored items behind them. The runners and jobs they act on come from builders.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hangar.store import dynamo
from support import FakeLambdaContext, handler_module, invoke, load_event, runner_event, user_event


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
