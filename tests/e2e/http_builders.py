"""Data builders for the end-to-end tests, over real HTTP against `python -m local` (local.testing.LocalApi):
the state a test starts from, made through the API as a user would, in the test's own org.

    set_license(local_api, org, plan="team")
    runner = create_runner(local_api, org, "scanner", ["linux"])
    heartbeat(local_api, runner["token"])
    job = create_job(local_api, org, labels=["linux"])

The in-process twin is tests/builders.py. (Not named builders.py: pytest puts every test folder on
sys.path under its bare module names, so two `builders` modules would shadow each other.)
"""

from __future__ import annotations

from typing import Any

import boto3
from support import ALL_BUT_OPERATOR, OPERATOR

from local.testing import LocalApi

OPERATOR_ORG = "hangar-operators"
"""The tenant of the operator who sets licenses (any org with the operator scope may)."""

JOB_FIELDS = {"type": "scan", "repositoryConfig": "abc123", "repositoryName": "org/terraform-infra", "branch": "main"}
"""A POST /v1/jobs body's required fields; tests add or replace the rest."""


def dynamodb_client(endpoint: str) -> Any:
    """A DynamoDB client for the database behind a LocalApi (`api.dynamodb_endpoint`): to plant or read
    what is stored. Table names: `api.table(logical_id)`."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def user_jwt(api: LocalApi, org: str) -> str:
    """A JWT of `org`'s user with every scope an org's user may hold (all but the operator's)."""
    return api.jwt(org, ALL_BUT_OPERATOR)


def set_license(api: LocalApi, org: str, **fields: Any) -> dict[str, Any]:
    """The operator's PUT /v1/orgs/{org}/license with exactly these fields; the license it answers."""
    result = api.call("PUT", f"/v1/orgs/{org}/license", token=api.jwt(OPERATOR_ORG, OPERATOR), json=fields)
    assert result.status == 200, result.body
    return dict(result.body)


def create_runner(
    api: LocalApi,
    org: str,
    name: str = "runner",
    labels: list[str] | None = None,
    concurrency: int | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """POST /api/runners as `org`'s user (or with the JWT `token`): the new runner as the route answers it,
    `_id` and its runner `token` included. Labels and configuredConcurrency are sent only when given."""
    body: dict[str, Any] = {"name": name}
    if labels is not None:
        body["labels"] = labels
    if concurrency is not None:
        body["configuredConcurrency"] = concurrency
    result = api.call("POST", "/api/runners", token=token or user_jwt(api, org), json=body)
    assert result.status == 201, result.body
    runner: dict[str, Any] = result.body["data"]
    return runner


def heartbeat(api: LocalApi, runner_token: str) -> dict[str, Any]:
    """The runner's POST /api/runners/heartbeat (online); what it answers."""
    result = api.call("POST", "/api/runners/heartbeat", runner_token=runner_token, json={"status": "online"})
    assert result.status == 200, result.body
    data: dict[str, Any] = result.body["data"]
    return data


def create_job(api: LocalApi, org: str, **fields: Any) -> dict[str, Any]:
    """A queued job of `org` (POST /v1/jobs; the /v1 view it answers)."""
    result = api.call("POST", "/v1/jobs", token=user_jwt(api, org), json={**JOB_FIELDS, **fields})
    assert result.status == 201, result.body
    job: dict[str, Any] = result.body
    return job


def get_job(api: LocalApi, org: str, job_id: str) -> dict[str, Any]:
    """GET /v1/jobs/{jobId} as `org`'s user."""
    result = api.call("GET", f"/v1/jobs/{job_id}", token=user_jwt(api, org))
    assert result.status == 200, result.body
    job: dict[str, Any] = result.body
    return job


def poll(api: LocalApi, token: str) -> dict[str, Any] | None:
    """The runner's POST /api/runners/jobs: the job it claims, or None."""
    result = api.call("POST", "/api/runners/jobs", runner_token=token, json={})
    assert result.status == 200, result.body
    job: dict[str, Any] | None = result.body["data"]["job"]
    return job


def report(api: LocalApi, token: str, job_id: str, status: str, **fields: Any) -> Any:
    """The runner's POST /api/runners/jobs/status; what it answers."""
    result = api.call(
        "POST", "/api/runners/jobs/status", runner_token=token, json={"jobId": job_id, "status": status, **fields}
    )
    assert result.status == 200, result.body
    return result.body["data"]
