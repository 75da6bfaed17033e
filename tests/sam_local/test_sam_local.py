"""Hangar under `sam local` (Docker) against make run's embedded backend, compared with make run itself.

`sam local invoke` runs one function of each group, both authorizers and the sweeper with their
events/ fixtures filled in from real data; the heartbeat runs on the template's own build (arm64,
through qemu-user-static, with only the timeout raised for emulation), the rest on the x86_64 copy for
speed. `sam local start-api` answers a user route and the heartbeat as make run does, and a refused
credential in the form SAM knows.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sam_harness import (
    ARM64_TEMPLATE,
    ORG,
    X86_64_TEMPLATE,
    Background,
    Fleet,
    Stack,
    call,
    emulated_arm64_template,
    filled_event,
    sam_invoke,
)

# One function of each group besides the agent's (its heartbeat runs on arm64 below), and the route
# make run answers the same request on.
GROUP_FUNCTIONS = {
    "GetRunner": ("runners", "GET", "/api/runners/{runner_id}"),
    "ListRunnersWithReadiness": ("fleet", "GET", "/v1/runners"),
    "GetJob": ("jobs", "GET", "/v1/jobs/{job_id}"),
    "GetTarget": ("targets", "GET", "/v1/targets/{target_id}"),
    "ListApiKeys": ("api_keys", "GET", "/v1/api-keys"),
    "GetLicense": ("licenses", "GET", "/v1/license"),
}
SAM_DENIED = {"message": "User is not authorized to access this resource"}  # SAM's answer to a Deny policy
SAM_NO_IDENTITY = {"message": "Unauthorized"}  # SAM's answer to a missing identity source
ARM64_AGENT_VERSION = "1.2.0-arm64"  # the heartbeat the arm64 function records
HANGAR_UNAUTHORIZED = {"success": False, "error": {"code": "unauthorized", "message": "Missing or invalid credential"}}


def _bearer(fleet: Fleet) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.jwt}"}


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


# --- the builds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", [ARM64_TEMPLATE, X86_64_TEMPLATE], ids=["arm64", "x86_64"])
def test_every_built_source_ships_its_bytecode(template: Path) -> None:
    """make build compiles what sam build leaves as sources only (Lambda cannot cache it: read-only)."""
    sources = list(template.parent.rglob("*.py"))
    assert len(sources) > 500  # the layer's packages and every function
    missing = [source for source in sources if not Path(importlib.util.cache_from_source(str(source))).exists()]
    assert missing == []


# --- sam local invoke --------------------------------------------------------------------------------


def test_user_authorizer_allows_a_real_jwt_and_provisions_the_tenant(stack: Stack, fleet: Fleet) -> None:
    policy = sam_invoke(stack, "UserAuthorizer", filled_event("UserAuthorizer", fleet)).result
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"]["orgId"] == ORG and "runners:read" in policy["context"]["scopes"]


def test_runner_authorizer_allows_the_runner_token(stack: Stack, fleet: Fleet) -> None:
    policy = sam_invoke(stack, "RunnerAuthorizer", filled_event("RunnerAuthorizer", fleet)).result
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["principalId"] == fleet.runner_id
    assert policy["context"]["runnerId"] == fleet.runner_id and policy["context"]["orgId"] == ORG


@pytest.mark.parametrize("function", sorted(GROUP_FUNCTIONS))
def test_a_function_of_each_group_answers_as_make_run_does(stack: Stack, fleet: Fleet, function: str) -> None:
    _, method, path = GROUP_FUNCTIONS[function]
    response = sam_invoke(stack, function, filled_event(function, fleet)).result
    expected = call(stack.api_url, method, path.format(**vars(fleet)), headers=_bearer(fleet))
    assert response["statusCode"] == expected.status == 200, (response, expected.body)
    assert _body(response) == expected.body


def test_sweeper_marks_the_silent_runner_offline(stack: Stack, fleet: Fleet) -> None:
    """The second runner's last heartbeat is made older than StaleAfterSeconds (the heartbeat handler
    in this process, its clock moved back, writing to the same backend); the sweeper under SAM finds it."""
    from hangar.core import clock
    from hangar.core.config import get_settings
    from support import FakeLambdaContext, clear_client_caches, handler_module

    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = stack.backend_endpoint
    clear_client_caches()
    try:
        clock.advance(-(get_settings().stale_after_seconds + 60))
        event = filled_event("Heartbeat", fleet, stale_runner=True)
        beat = handler_module("Heartbeat").handler(event, FakeLambdaContext())
        assert beat["statusCode"] == 200, beat
    finally:
        clock.reset()
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL")
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
        clear_client_caches()
    summary = sam_invoke(stack, "Sweeper", filled_event("Sweeper", fleet)).result
    assert summary["errors"] == 0 and summary["runnersMarkedOffline"] == 1, summary
    runner = call(stack.api_url, "GET", f"/api/runners/{fleet.stale_runner_id}", headers=_bearer(fleet)).body["data"]
    assert runner["status"] == "offline"


# --- sam local start-api -----------------------------------------------------------------------------


def test_start_api_user_route_answers_as_make_run_does(stack: Stack, fleet: Fleet) -> None:
    through_sam = call(stack.sam_url, "GET", "/api/runners", headers=_bearer(fleet), timeout=600)
    through_make_run = call(stack.api_url, "GET", "/api/runners", headers=_bearer(fleet))
    assert through_sam.status == through_make_run.status == 200, through_sam.body
    assert through_sam.body == through_make_run.body
    assert {runner["_id"] for runner in through_sam.body["data"]} == {fleet.runner_id, fleet.stale_runner_id}


def test_start_api_creates_a_webhook_with_its_secret_encrypted_by_the_backends_key(stack: Stack, fleet: Fleet) -> None:
    """sam-env.json names the embedded backend's KMS key by its alias: a webhook's secret can be stored."""
    body = {"url": "https://93.184.215.14/hooks", "events": ["job.completed"]}  # a public address, no DNS
    created = call(stack.sam_url, "POST", "/v1/webhooks", headers=_bearer(fleet), json=body, timeout=600)
    assert created.status == 201, created.body
    assert created.body["secret"].startswith("whsec_")


def test_start_api_heartbeat_answers_as_make_run_does(stack: Stack, fleet: Fleet) -> None:
    headers = {"X-Runner-Token": fleet.runner_token}
    body = json.loads(filled_event("Heartbeat", fleet)["body"])
    through_sam = call(stack.sam_url, "POST", "/api/runners/heartbeat", headers=headers, json=body, timeout=600)
    through_make_run = call(stack.api_url, "POST", "/api/runners/heartbeat", headers=headers, json=body)
    assert through_sam.status == through_make_run.status == 200, through_sam.body
    assert through_sam.body == through_make_run.body


def test_start_api_refused_credential_is_sams_403_where_make_run_and_api_gateway_answer_401(
    stack: Stack, fleet: Fleet
) -> None:
    """A Deny policy: SAM answers its own 403 (it applies no GatewayResponses); API Gateway and make run
    answer ACCESS_DENIED, which the template makes a 401 carrying the Deny's reason. Never SAM's 502."""
    unknown_key = {"X-API-Key": "hgk_000000000000_" + "A" * 38}
    bad_jwt = {"Authorization": "Bearer not-a-jwt"}
    for headers, message in ((unknown_key, "Invalid API key"), (bad_jwt, "Invalid token")):
        through_sam = call(stack.sam_url, "GET", "/api/runners", headers=headers, timeout=600)
        assert (through_sam.status, through_sam.body) == (403, SAM_DENIED), headers
        through_make_run = call(stack.api_url, "GET", "/api/runners", headers=headers)
        reason = {"success": False, "error": {"code": "unauthorized", "message": message}}
        assert (through_make_run.status, through_make_run.body) == (401, reason), headers


def test_start_api_missing_runner_token_is_401_without_an_authorizer_call(stack: Stack) -> None:
    through_sam = call(stack.sam_url, "POST", "/api/runners/heartbeat", json={"status": "online"})
    assert (through_sam.status, through_sam.body) == (401, SAM_NO_IDENTITY)
    through_make_run = call(stack.api_url, "POST", "/api/runners/heartbeat", json={"status": "online"})
    assert (through_make_run.status, through_make_run.body) == (401, HANGAR_UNAUTHORIZED)


# --- last: the arm64 build, once its base image is there (built in the background meanwhile) -----------


def test_heartbeat_on_the_templates_own_arm64_build(stack: Stack, fleet: Fleet, arm64_image: Background | None) -> None:
    if arm64_image is None:
        pytest.skip("arm64 cannot run here (qemu-user-static through binfmt_misc): see the arm64 emulation line")
    arm64_image.result()
    event = filled_event("Heartbeat", fleet)
    event["body"] = json.dumps({**json.loads(event["body"]), "version": ARM64_AGENT_VERSION})
    response = sam_invoke(stack, "Heartbeat", event, template=emulated_arm64_template()).result
    assert response["statusCode"] == 200, response
    assert _body(response)["success"] is True
    # The arm64 function's write reached the backend make run reads.
    runner = call(stack.api_url, "GET", f"/api/runners/{fleet.runner_id}", headers=_bearer(fleet)).body["data"]
    assert runner["status"] == "online" and runner["version"] == ARM64_AGENT_VERSION
