"""Security over real HTTP, route by route from template.yaml: tenant isolation, scopes, no secret leaks.

Every route with an id answers 404 to another tenant; every manage route answers 403 to a read-only
token (with a body that is otherwise valid, so the scope is what refuses it); no response ever carries
a token hash; and no table holds a plaintext token.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from http_builders import dynamodb_client
from support import READ_ONLY

from local.template import load_template, routes
from local.testing import LocalApi, unique_org

ROOT = Path(__file__).resolve().parents[2]
ROUTES = [route for route in routes(load_template(ROOT / "template.yaml"))]
USER_ROUTES = [route for route in ROUTES if route.authorizer == "UserAuthorizer"]
# The user routes a read-only token may call; every other user route needs a manage (or operator) scope.
READ_ROUTES = {
    "ListRunnersFunction",
    "GetRunnerFunction",
    "ListRunnersWithReadinessFunction",
    "GetReadinessFunction",
    "ListJobsFunction",
    "GetJobFunction",
    "GetJobLogsFunction",
    "ListJobArtifactsFunction",
    "ListTargetsFunction",
    "GetTargetFunction",
    "GetLicenseFunction",
}
PLAINTEXT_TOKEN = re.compile(r"hg[rek]_[0-9a-f]{12}_[0-9A-Za-z]{38}")


def sample_body(function_id: str) -> Any:
    """The events/ fixture's body: valid input for the route."""
    event = json.loads((ROOT / "events" / f"{function_id.removesuffix('Function')}.json").read_text())
    return json.loads(event["body"]) if event.get("body") else None


class Tenant:
    """A tenant with one of everything, created over the API."""

    def __init__(self, api: LocalApi) -> None:
        self.api = api
        self.org = unique_org("sec")
        self.token = api.jwt(self.org)
        operator = api.jwt(self.org, "admin:licenses")
        assert api.call("PUT", f"/v1/orgs/{self.org}/license", token=operator, json={"plan": "team"}).status == 200
        runner = self.ok("POST", "/api/runners", {"name": "sec-runner", "labels": ["linux"]})["data"]
        self.runner_id, self.runner_token = runner["_id"], runner["token"]
        self.target_id = self.ok(
            "POST", "/v1/targets", {"name": "t", "url": "https://example.com", "visibility": "public"}
        )["id"]
        self.job_id = self.ok("POST", "/v1/jobs", sample_body("CreateJobFunction"))["id"]
        created_key = self.ok("POST", "/v1/api-keys", {"name": "k", "scopes": ["runners:read"]})
        self.key_id, self.api_key = created_key["id"], created_key["token"]
        self.enrollment = self.ok("POST", "/v1/runners/enrollment-tokens", {})["token"]

    def ok(self, method: str, path: str, body: Any) -> Any:
        result = self.api.call(method, path, token=self.token, json=body)
        assert result.status in (200, 201), (method, path, result.status, result.body)
        return result.body

    def path(self, template_path: str) -> str:
        return (
            template_path.replace("{runnerId}", self.runner_id)
            .replace("{jobId}", self.job_id)
            .replace("{targetId}", self.target_id)
            .replace("{keyId}", self.key_id)
            .replace("{orgId}", self.org)
        )


@pytest.fixture(scope="module")
def tenants(local_api: LocalApi) -> tuple[Tenant, Tenant]:
    return Tenant(local_api), Tenant(local_api)


@pytest.mark.parametrize(
    "route",
    [r for r in USER_ROUTES if "{" in r.path and r.function_id != "PutOrgLicenseFunction"],
    ids=lambda route: route.function_id,
)
def test_another_tenants_id_is_not_found(local_api: LocalApi, tenants: tuple[Tenant, Tenant], route: Any) -> None:
    owner, intruder = tenants
    body = sample_body(route.function_id) if route.method in ("POST", "PUT") else None
    result = local_api.call(route.method, owner.path(route.path), token=intruder.token, json=body)
    assert result.status == 404, (route.function_id, result.status, result.body)


def test_attempts_from_another_tenant_changed_nothing(local_api: LocalApi, tenants: tuple[Tenant, Tenant]) -> None:
    owner, _ = tenants
    for path in (f"/api/runners/{owner.runner_id}", f"/v1/jobs/{owner.job_id}", f"/v1/targets/{owner.target_id}"):
        assert local_api.call("GET", path, token=owner.token).status == 200, path
    assert local_api.call("GET", "/v1/license", api_key=owner.api_key).status == 200
    job = local_api.call("GET", f"/v1/jobs/{owner.job_id}", token=owner.token).body
    assert job["status"] == "queued"


def test_another_tenants_runner_token_gets_no_install_script(
    local_api: LocalApi, tenants: tuple[Tenant, Tenant]
) -> None:
    owner, intruder = tenants
    result = local_api.call("GET", f"/api/runners/{owner.runner_id}/setup?token={intruder.runner_token}")
    assert result.status == 404, result


@pytest.mark.parametrize(
    "route", [r for r in USER_ROUTES if r.function_id not in READ_ROUTES], ids=lambda route: route.function_id
)
def test_read_only_token_is_refused_on_every_manage_route(
    local_api: LocalApi, tenants: tuple[Tenant, Tenant], route: Any
) -> None:
    owner, _ = tenants
    body = sample_body(route.function_id) if route.method in ("POST", "PUT") else None
    result = local_api.call(route.method, owner.path(route.path), token=local_api.jwt(owner.org, READ_ONLY), json=body)
    assert result.status == 403, (route.function_id, result.status, result.body)
    assert result.body["error"]["code"] in ("insufficient_scope", "forbidden"), result.body


@pytest.mark.parametrize("route", [r for r in USER_ROUTES if r.function_id in READ_ROUTES], ids=lambda r: r.function_id)
def test_read_only_token_may_read(local_api: LocalApi, tenants: tuple[Tenant, Tenant], route: Any) -> None:
    owner, _ = tenants
    result = local_api.call(route.method, owner.path(route.path), token=local_api.jwt(owner.org, READ_ONLY))
    assert result.status == 200, (route.function_id, result.status, result.body)


def _all_items(local_api: LocalApi) -> list[dict[str, Any]]:
    dynamodb = dynamodb_client(local_api.dynamodb_endpoint)
    items: list[dict[str, Any]] = []
    for name in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            items.extend(page["Items"])
    return items


def _readable(value: object) -> str:
    """A binary attribute as text for the search: a job's log chunk is stored zlib-compressed (`dataZ`),
    so a token written into a log is searched for in the text the chunk holds, not in its bytes."""
    if not isinstance(value, bytes):
        raise TypeError(f"{type(value).__name__} is not JSON")
    try:
        return zlib.decompress(value).decode("utf-8", "replace")
    except zlib.error:
        return value.decode("latin-1")


def test_no_table_holds_a_plaintext_token_and_no_response_a_hash(
    local_api: LocalApi, tenants: tuple[Tenant, Tenant]
) -> None:
    owner, _ = tenants
    # Binary attributes exist once a job log was written on this server (another test's, on a shared one).
    stored = json.dumps(_all_items(local_api), default=_readable)
    for secret in (owner.runner_token, owner.api_key, owner.enrollment):
        assert secret not in stored
    assert not PLAINTEXT_TOKEN.search(stored)
    hashes = set(re.findall(r'"hash": \{"S": "([0-9a-f]{64})"\}', stored))
    assert hashes, "expected hashed tokens in the Tokens table"
    responses = {
        route.function_id: local_api.call(route.method, owner.path(route.path), token=owner.token).body
        for route in USER_ROUTES
        if route.method == "GET"
    }
    text = json.dumps(responses)
    assert not any(value in text for value in hashes)
    assert owner.api_key not in text
    # The one designed exception (DESIGN §4): setup-info shows a new runner's token until the runner
    # first authenticates. Nowhere else; and after its first heartbeat not there either.
    setup_info = responses.pop("GetSetupInfoFunction")
    assert setup_info["data"]["token"] == owner.runner_token
    assert owner.runner_token not in json.dumps(responses)
    beat = local_api.call("POST", "/api/runners/heartbeat", runner_token=owner.runner_token, json={"status": "online"})
    assert beat.status == 200, beat
    after = local_api.call("GET", f"/api/runners/{owner.runner_id}/setup-info", token=owner.token).body
    assert after["data"]["token"] is None and owner.runner_token not in json.dumps(after)
