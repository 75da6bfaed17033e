"""Data builders for the in-process tests (moto, handlers called directly): the state a test starts from,
made through the real routes, each under ids of its own (`unique_org()`), so tests never share data.

    org = unique_org()
    set_license(org, "team")
    runner_id = live_runner(org, ["linux"])
    job = new_job(org, labels=["linux"])

The calls a test is about (a poll, a report, a cancel) stay with the tests (jobs_helpers.py,
job_outputs_helpers.py); what only sets the scene is built here, once. Over HTTP: tests/e2e/http_builders.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from jobs_helpers import polled_job
from support import OPERATOR, invoke, runner_event, unique_org, user_event

__all__ = [
    "create_job",
    "create_runner",
    "heartbeat",
    "live_runner",
    "new_job",
    "put_license",
    "running_job",
    "set_license",
    "unique_name",
    "unique_org",
]

OPERATOR_ORG = "operators"
"""The tenant of the operator who sets licenses (any org with the operator scope may)."""

JOB_FIELDS = {"type": "scan", "repositoryConfig": "abc123", "repositoryName": "org/infra", "branch": "main"}
"""A POST /v1/jobs body's required fields; tests add or replace the rest."""


def unique_name(prefix: str) -> str:
    """A name no other test uses (`prefix-<12 hex>`)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def put_license(org: str, **fields: Any) -> dict[str, Any]:
    """The operator's PUT /v1/orgs/{org}/license with exactly these fields; the license it answers."""
    event = user_event("PutOrgLicense", OPERATOR_ORG, scopes=OPERATOR, body=fields, path_params={"orgId": org})
    status, body, _ = invoke("PutOrgLicense", event)
    assert status == 200, body
    license_: dict[str, Any] = body
    return license_


def set_license(org: str, plan: str = "enterprise", **fields: Any) -> dict[str, Any]:
    """`org` on `plan` (enterprise unless told), with any other license fields (licenseState, overrides)."""
    return put_license(org, plan=plan, **fields)


def create_runner(
    org: str, name: str = "runner", labels: list[str] | None = None, concurrency: int | None = None
) -> dict[str, Any]:
    """POST /api/runners as `org`'s user: the new runner as the route answers it (`_id`, `token`, ...).
    Labels and configuredConcurrency are sent only when given (the route's defaults otherwise)."""
    body: dict[str, Any] = {"name": name}
    if labels is not None:
        body["labels"] = labels
    if concurrency is not None:
        body["configuredConcurrency"] = concurrency
    status, response, _ = invoke("CreateRunner", user_event("CreateRunner", org, body=body))
    assert status == 201, response
    runner: dict[str, Any] = response["data"]
    return runner


def heartbeat(org: str, runner_id: str, token_version: int = 1, status: str = "online") -> dict[str, Any]:
    """The runner's POST /api/runners/heartbeat; what it answers."""
    event = runner_event("Heartbeat", org, runner_id, token_version, body={"status": status})
    code, body, _ = invoke("Heartbeat", event)
    assert code == 200, body
    data: dict[str, Any] = body["data"]
    return data


def live_runner(org: str, labels: list[str] | None = None, concurrency: int = 1, name: str = "runner") -> str:
    """The id of a runner that has heartbeated, so it may claim jobs."""
    runner_id: str = create_runner(org, name, labels or [], concurrency)["_id"]
    heartbeat(org, runner_id)
    return runner_id


def create_job(org: str, headers: dict[str, str] | None = None, scopes: str | None = None, **fields: Any) -> Any:
    """POST /v1/jobs as `org`'s user (with extra request headers, or narrower scopes): (status, body, headers)."""
    event = user_event("CreateJob", org, body={**JOB_FIELDS, **fields}, **({"scopes": scopes} if scopes else {}))
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    return invoke("CreateJob", event)


def new_job(org: str, **fields: Any) -> dict[str, Any]:
    """A queued job of `org` (the /v1 view POST /v1/jobs answers)."""
    status, body, _ = create_job(org, **fields)
    assert status == 201, body
    job: dict[str, Any] = body
    return job


def running_job(org: str | None = None, runner_id: str | None = None) -> tuple[str, str, str]:
    """(org, runner id, job id) of a job claimed by a live runner (status assigned), on enterprise."""
    org = org or unique_org()
    set_license(org)
    runner_id = runner_id or live_runner(org)
    job = new_job(org)
    claimed = polled_job(org, runner_id)
    assert claimed is not None
    assert claimed["_id"] == job["id"]
    return org, runner_id, job["id"]
