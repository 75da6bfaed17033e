"""Rate limits over real HTTP against local/ (docs/limits.md): the WAF rules (per runner, per source IP),
the usage plans (per tenant, per method) and the DynamoDB counters, each biting only its own principal.

The session server is shared with other tests: every test here works in its own tenants and runners,
and the register test sends from its own loopback address, so no limit spills over.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from http_builders import create_runner, dynamodb_client

from local import REPO_ROOT
from local.testing import HttpResult, LocalApi, start_local_api, unique_org

HEARTBEAT = {"status": "online"}
RUNNER_LIMIT_PER_MINUTE = 120  # template.yaml: ApiWebAcl rule runner-routes-per-runner
REGISTER_LIMIT_PER_MINUTE = 30  # template.yaml: ApiWebAcl rule register-per-ip
FREE_RUNNER_ROUTE_BURST = 20  # template.yaml: FreeUsagePlan, /api/runners/heartbeat/POST BurstLimit


def team_org(api: LocalApi) -> tuple[str, str]:
    """A tenant on the team plan (10 runners) and a JWT for it."""
    org = unique_org("limits")
    jwt = api.jwt(org)
    result = api.call("PUT", f"/v1/orgs/{org}/license", token=jwt, json={"plan": "team"})
    assert result.status == 200, result.body
    return org, jwt


def heartbeat(api: LocalApi, runner: dict[str, Any]) -> HttpResult:
    return api.call("POST", "/api/runners/heartbeat", runner_token=runner["token"], json=HEARTBEAT)


def assert_rate_limited(result: HttpResult, dialect: str) -> None:
    assert result.status == 429, result.body
    assert int(result.headers["Retry-After"]) >= 1
    assert result.body["error"]["code"] == "rate_limited"
    if dialect == "api":
        assert result.body["success"] is False
    else:
        assert "success" not in result.body


def test_a_runner_over_120_per_minute_is_refused_and_another_runner_is_not(local_api: LocalApi) -> None:
    org, jwt = team_org(local_api)
    noisy, quiet = (create_runner(local_api, org, name, ["linux"], token=jwt) for name in ("noisy", "quiet"))
    statuses = []
    refusal: HttpResult | None = None
    for index in range(150):  # well within a minute
        result = heartbeat(local_api, noisy)
        statuses.append(result.status)
        if result.status == 429 and refusal is None:
            refusal = result
        if index % 25 == 0:  # the other runner of the same tenant keeps being served throughout
            assert heartbeat(local_api, quiet).status == 200
    assert statuses == [200] * RUNNER_LIMIT_PER_MINUTE + [429] * (150 - RUNNER_LIMIT_PER_MINUTE)
    assert refusal is not None
    assert_rate_limited(refusal, "api")
    assert refusal.headers["Retry-After"] == "60"
    assert "120 per minute" in refusal.body["error"]["message"]
    assert heartbeat(local_api, quiet).status == 200
    # The other runner routes count against the same runner's budget (one WAF rule, keyed on the token).
    poll = local_api.call("POST", "/api/runners/jobs", runner_token=noisy["token"], json={})
    assert_rate_limited(poll, "api")

    local_api.advance_clock(61)
    result = heartbeat(local_api, noisy)
    assert result.status == 200, result.body


def test_the_sixth_regeneration_within_an_hour_is_refused_for_that_runner_only(local_api: LocalApi) -> None:
    org, jwt = team_org(local_api)
    first, second = (create_runner(local_api, org, name, ["linux"], token=jwt) for name in ("first", "second"))
    # The counter is a fixed window aligned to the hour: start well inside one.
    now = local_api.now()
    if now % 3600 > 3600 - 60:
        local_api.advance_clock(3600 - now % 3600 + 1)

    def regenerate(runner: dict[str, Any]) -> HttpResult:
        return local_api.call("POST", f"/api/runners/{runner['_id']}/regenerate-token", token=jwt)

    for _ in range(5):
        result = regenerate(first)
        assert result.status == 200, result.body
    refused = regenerate(first)
    assert_rate_limited(refused, "api")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert regenerate(second).status == 200

    local_api.advance_clock(3600)
    result = regenerate(first)
    assert result.status == 200, result.body


@pytest.fixture(scope="module")
def small_plan_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """local/ on a copy of template.yaml whose free plan allows 1 req/s, burst 3: a tenant outruns it on
    any machine (the real 50 req/s needs a fast one; tests/unit/test_local_limits.py checks those)."""
    directory = tmp_path_factory.mktemp("small-plan")
    text = (REPO_ROOT / "template.yaml").read_text()
    free_throttle = "      Throttle: {RateLimit: 50, BurstLimit: 100}\n      Quota: {Limit: 1000000, Period: MONTH}\n"
    assert text.count(free_throttle) == 1, "FreeUsagePlan's throttle changed: update this fixture"
    text = text.replace(
        free_throttle, free_throttle.replace("RateLimit: 50, BurstLimit: 100", "RateLimit: 1, BurstLimit: 3")
    )
    (directory / "template.yaml").write_text(text)
    for code in ("functions", "layers"):  # CodeUri is relative to the template
        (directory / code).symlink_to(REPO_ROOT / code, target_is_directory=True)
    api = start_local_api(args=["--template", str(directory / "template.yaml")], timeout=60)
    try:
        yield api
    finally:
        api.stop()


def test_a_tenant_over_its_usage_plan_rate_is_throttled_by_the_gateway(small_plan_api: LocalApi) -> None:
    api = small_plan_api
    busy, calm = unique_org("busy"), unique_org("calm")
    busy_jwt, calm_jwt = api.jwt(busy, "runners:read"), api.jwt(calm, "runners:read")
    statuses = []
    throttled: HttpResult | None = None
    for _ in range(50):
        result = api.call("GET", "/v1/license", token=busy_jwt)
        statuses.append(result.status)
        if result.status == 429:
            throttled = result
            break
    assert statuses[:3] == [200, 200, 200], statuses  # the burst
    assert throttled is not None, statuses
    assert throttled.body == {"success": False, "error": {"code": "rate_limited", "message": "Too many requests"}}
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"  # the gateway, not a handler

    assert api.call("GET", "/v1/license", token=calm_jwt).status == 200  # another tenant: its own bucket
    api.advance_clock(5)  # the bucket refills
    assert api.call("GET", "/v1/license", token=busy_jwt).status == 200


def test_runner_routes_are_throttled_per_tenant_by_plan_and_a_plan_change_applies_at_once(
    local_api: LocalApi,
) -> None:
    org = unique_org("plan")
    jwt = local_api.jwt(org)
    runner = create_runner(local_api, org, "free-runner", ["linux"], token=jwt)
    # Free plan: the heartbeat method takes 2 req/s with a burst of 20, for the whole tenant.
    statuses = []
    throttled: HttpResult | None = None
    for _ in range(300):  # drains the bucket as long as a request takes under half a second
        result = heartbeat(local_api, runner)
        statuses.append(result.status)
        if result.status == 429:
            throttled = result
            break
    assert statuses[:FREE_RUNNER_ROUTE_BURST] == [200] * FREE_RUNNER_ROUTE_BURST
    assert throttled is not None and len(statuses) < RUNNER_LIMIT_PER_MINUTE  # the plan's throttle, not WAF's
    assert throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert_rate_limited(throttled, "api")

    result = local_api.call("PUT", f"/v1/orgs/{org}/license", token=jwt, json={"plan": "team"})
    assert result.status == 200, result.body
    # Team: 20 req/s, burst 200 — the key moved usage plans, the runner's token did not change.
    assert [heartbeat(local_api, runner).status for _ in range(10)] == [200] * 10


def _post_from(source_ip: str, url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(source_ip, 0)
    )
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode()
        return response.status, dict(response.getheaders()), json.loads(text) if text else None
    finally:
        connection.close()


def _own_loopback_address() -> str:
    """A loopback address no other test sends from (Linux routes all of 127/8 to lo)."""
    for _ in range(20):
        candidate = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"
        try:
            with socket.socket() as probe:
                probe.bind((candidate, 0))
            return candidate
        except OSError:
            continue
    pytest.skip("cannot send from another loopback address on this machine")


def test_register_is_limited_per_source_ip(local_api: LocalApi) -> None:
    address = _own_loopback_address()
    junk = {"token": "hge_000000000000_notarealtokenatallnotarealtoken000000"}
    statuses = [
        _post_from(address, local_api.url, "/v1/runners/register", junk)[0] for _ in range(REGISTER_LIMIT_PER_MINUTE)
    ]
    assert 429 not in statuses and set(statuses) <= {400, 401}, statuses  # refused on their merits, not rate
    status, headers, body = _post_from(address, local_api.url, "/v1/runners/register", junk)
    assert status == 429, body
    assert headers["Retry-After"] == "60"
    assert body == {
        "error": {"code": "rate_limited", "message": "Too many registrations from this address: at most 30 per minute"}
    }
    # Another address is not affected.
    assert local_api.call("POST", "/v1/runners/register", json=junk).status in (400, 401)

    local_api.advance_clock(61)
    assert _post_from(address, local_api.url, "/v1/runners/register", junk)[0] in (400, 401)


def test_a_route_whose_authorizer_returns_no_usage_key_is_403(local_api: LocalApi) -> None:
    """API Gateway's INVALID_API_KEY: here a runner token stored without its tenant's usage key."""
    org, jwt = team_org(local_api)
    runner = create_runner(local_api, org, "keyless", ["linux"], token=jwt)
    dynamodb = dynamodb_client(local_api.dynamodb_endpoint)
    dynamodb.update_item(
        TableName=local_api.table("TokensTable"),
        Key={"tokenId": {"S": runner["tokenPrefix"]}},
        UpdateExpression="REMOVE usageKey",
    )
    result = heartbeat(local_api, runner)
    assert result.status == 403, result.body
    assert result.body == {
        "success": False,
        "error": {"code": "forbidden", "message": "No usage plan for this tenant"},
    }
    assert result.headers["x-amzn-ErrorType"] == "ForbiddenException"
