"""Enrollment over real HTTP against local/ (seed 003): single use under concurrency, the seed's example."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from local.testing import HttpResult, LocalApi

CONCURRENT_REGISTRATIONS = 20


def test_one_enrollment_token_registers_exactly_one_runner_under_concurrency(local_api: LocalApi, org: str) -> None:
    jwt = local_api.jwt(org, "runners:read runners:manage")
    status, _, created = local_api.call(
        "POST", "/v1/runners/enrollment-tokens", token=jwt, json={"name": "prod-runner-1"}
    )
    assert status == 201, created
    barrier = threading.Barrier(CONCURRENT_REGISTRATIONS)

    def register(index: int) -> HttpResult:
        barrier.wait(timeout=30)
        return local_api.call(
            "POST", "/v1/runners/register", json={"token": created["token"], "labels": [f"worker-{index}"]}
        )

    with ThreadPoolExecutor(CONCURRENT_REGISTRATIONS) as pool:
        results = list(pool.map(register, range(CONCURRENT_REGISTRATIONS)))

    statuses = sorted(result.status for result in results)
    assert statuses == [201] + [401] * (CONCURRENT_REGISTRATIONS - 1), [(r.status, r.body) for r in results]
    refused = [result.body for result in results if result.status == 401]
    assert all(body == {"error": {"code": "token_used", "message": body["error"]["message"]}} for body in refused)
    (winner,) = [result.body for result in results if result.status == 201]
    assert winner["runner"]["name"] == "prod-runner-1" and winner["token"].startswith("hgr_")

    # Exactly one runner exists, and its token works on the agent routes.
    status, _, listed = local_api.call("GET", "/api/runners", token=jwt)
    assert status == 200 and [runner["_id"] for runner in listed["data"]] == [winner["runner"]["id"]]
    status, _, beat = local_api.call(
        "POST", "/api/runners/heartbeat", runner_token=winner["token"], json={"status": "online"}
    )
    assert status == 200 and beat["data"]["status"] == "online", beat
    status, _, fleet = local_api.call("GET", "/v1/runners", token=jwt)
    assert status == 200 and fleet["runners"][0]["status"] == "online"
    assert fleet["runners"][0]["lastHeartbeatAt"]


def test_seed_003_enrollment_example(local_api: LocalApi, org: str) -> None:
    """curl -X POST .../v1/runners/enrollment-tokens -H "X-API-Key: ..." -d '{"name": "prod-runner-1"}'"""
    jwt = local_api.jwt(org)
    status, _, key = local_api.call(
        "POST", "/v1/api-keys", token=jwt, json={"name": "enrollment", "scopes": ["runners:manage"]}
    )
    assert status == 201, key
    status, headers, created = local_api.call(
        "POST",
        "/v1/runners/enrollment-tokens",
        headers={"X-API-Key": key["token"], "Content-Type": "application/json"},
        body='{\n  "name": "prod-runner-1"\n}',
    )
    assert status == 201, created
    assert headers["Content-Type"] == "application/json"
    assert set(created) == {"token", "tokenPrefix", "expiresAt"}
    assert created["token"].startswith(f"hge_{created['tokenPrefix']}_")

    # The agent's registration, as `hangar-agent register` sends it.
    status, _, registered = local_api.call(
        "POST",
        "/v1/runners/register",
        json={"token": created["token"], "version": "0.1.0", "labels": ["linux"], "configuredConcurrency": 1},
    )
    assert status == 201, registered
    assert registered["runner"]["name"] == "prod-runner-1"
    assert registered["heartbeatIntervalSeconds"] > 0 and registered["pollIntervalSeconds"] > 0


def test_expired_and_junk_enrollment_tokens_over_http(local_api: LocalApi, org: str) -> None:
    jwt = local_api.jwt(org, "runners:manage")
    status, _, created = local_api.call("POST", "/v1/runners/enrollment-tokens", token=jwt, json={"ttlSeconds": 60})
    assert status == 201, created
    local_api.advance_clock(61)
    status, _, body = local_api.call("POST", "/v1/runners/register", json={"token": created["token"]})
    assert (status, body["error"]["code"]) == (401, "token_expired"), body
    status, _, body = local_api.call("POST", "/v1/runners/register", json={"token": "hge_nonsense"})
    assert (status, body["error"]["code"]) == (401, "token_invalid"), body
    # Without runners:manage, no enrollment token.
    status, _, body = local_api.call(
        "POST", "/v1/runners/enrollment-tokens", token=local_api.jwt(org, "runners:read"), json={}
    )
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
