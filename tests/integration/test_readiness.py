"""Readiness (seed 003): GET /v1/runners and GET /v1/runners/readiness in-process against moto."""

from __future__ import annotations

from typing import Any

from builders import create_runner, put_license
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.store import dynamo, orgs
from hangar.store import runners as runner_store
from seed_shapes import (
    SEED_LICENSE_KEYS,
    SEED_LIST_READINESS_KEYS,
    SEED_READINESS_KEYS,
    SEED_READINESS_LICENSE_KEYS,
    SEED_V1_RUNNER_KEYS,
)
from support import AwsStack, invoke, unique_org, user_event


def bring_online(org: str, runner_id: str, current_jobs: int = 0, **extra: Any) -> None:
    """What a heartbeat leaves on the runner item (the Heartbeat handler is another module's)."""
    now = clock.now()
    updated = runner_store.update_runner(
        org,
        runner_id,
        {
            "status": "online",
            "lastHeartbeatEpoch": int(now),
            "lastHeartbeatAt": clock.iso(now),
            "liveShard": runner_store.live_shard(runner_id),
            "currentJobs": current_jobs,
            **extra,
        },
    )
    assert updated is not None


def create_target(org: str, visibility: str = "public") -> str:
    status, body, _ = invoke(
        "CreateTarget",
        user_event("CreateTarget", org, body={"name": "site", "url": "https://example.com", "visibility": visibility}),
    )
    assert status == 201, body
    return str(body["id"])


def readiness(org: str, scopes: str | None = None, **query: str) -> tuple[int, Any]:
    event = user_event("GetReadiness", org, query=query, **({"scopes": scopes} if scopes else {}))
    status, body, _ = invoke("GetReadiness", event)
    return status, body


def ready_body(org: str, **query: str) -> dict[str, Any]:
    status, body = readiness(org, **query)
    assert status == 200, body
    return dict(body)


def list_with_readiness(org: str, **query: str) -> dict[str, Any]:
    status, body, _ = invoke("ListRunnersWithReadiness", user_event("ListRunnersWithReadiness", org, query=query))
    assert status == 200, body
    return dict(body)


def test_no_runners_is_not_ready(aws: AwsStack) -> None:
    body = ready_body(unique_org())
    assert body["ready"] is False and body["runnerOk"] is False and body["visibilityOk"] is True
    assert body["selectedRunnerId"] is None and body["runners"] == []
    assert body["reasons"] == ["no_online_runner"]
    assert "visibility" not in body  # only when a target is named
    assert body["license"]["plan"] == "free" and body["license"]["canStartSelfHostedScan"] is True


def test_one_online_runner_is_ready_in_the_seed_shape(aws: AwsStack) -> None:
    org = unique_org()
    runner_id = create_runner(org, "prod-runner-1")["_id"]
    assert ready_body(org)["reasons"] == ["no_online_runner"]  # created runners start offline
    bring_online(org, runner_id)
    body = ready_body(org)
    assert set(body) == SEED_LIST_READINESS_KEYS | {"reasons"}
    assert body["ready"] is True and body["reasons"] == []
    assert body["runnerOk"] is True and body["selectedRunnerId"] == runner_id
    assert set(body["license"]) == SEED_LICENSE_KEYS
    assert body["runners"] == [
        {"id": runner_id, "name": "prod-runner-1", "status": "online", "configuredConcurrency": 1, "currentJobs": 0}
    ]


def test_seed_shapes_of_list_and_readiness(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    runner_id = create_runner(org, "prod-runner-1")["_id"]
    bring_online(
        org,
        runner_id,
        version="0.1.0",
        containerEngine="docker",
        providerState={"modelProvider": "openai-codex", "embeddingProvider": "local"},
        capabilities={"localProviderSecrets": True, "localTargetAuthConfig": True},
    )
    listed = list_with_readiness(org)
    assert set(listed) == {"runners", "readiness", "nextCursor"} and listed["nextCursor"] is None
    runner = listed["runners"][0]
    assert set(runner) >= SEED_V1_RUNNER_KEYS and "token" not in runner
    assert runner["status"] == "online" and runner["containerEngine"] == "docker"
    assert runner["providerState"] == {"modelProvider": "openai-codex", "embeddingProvider": "local"}
    summary = listed["readiness"]
    assert set(summary) >= SEED_LIST_READINESS_KEYS and summary["ready"] is True
    assert summary["license"] == {
        "plan": "team",
        "licenseState": "active",
        "canRegisterRunner": True,
        "canStartSelfHostedScan": True,
        "runnerLimit": 10,
        "concurrentJobLimit": 10,
        "targetLimit": 25,
        "allowedTargetVisibilities": ["public", "staging_preview", "private_internal", "localhost"],
    }
    assert set(summary["runners"][0]) >= {"id", "name", "status"}

    target_id = create_target(org, "private_internal")
    body = ready_body(org, targetId=target_id)
    assert set(body) == SEED_READINESS_KEYS | {"reasons"}
    assert body["visibility"] == "private_internal" and body["visibilityOk"] is True and body["ready"] is True
    assert set(body["license"]) >= SEED_READINESS_LICENSE_KEYS
    assert set(body["runners"][0]) == {"id", "name", "status", "configuredConcurrency", "currentJobs"}


def test_stale_runner_reads_offline_at_once(aws: AwsStack) -> None:
    org = unique_org()
    runner_id = create_runner(org, "r1")["_id"]
    bring_online(org, runner_id)
    assert ready_body(org)["ready"] is True
    clock.advance(get_settings().stale_after_seconds + 1)
    body = ready_body(org)
    assert body["ready"] is False and body["runnerOk"] is False and body["runners"] == []
    assert body["reasons"] == ["no_online_runner"]
    assert list_with_readiness(org)["runners"][0]["status"] == "offline"


def test_over_limit_plan_after_downgrade_is_not_ready(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    first, second = create_runner(org, "a")["_id"], create_runner(org, "b")["_id"]
    bring_online(org, first)
    bring_online(org, second)
    assert ready_body(org)["ready"] is True
    license_ = put_license(org, runnerLimit=1)
    assert license_["runnerLimit"] == 1 and license_["usage"]["runners"] == 2
    assert license_["canRegisterRunner"] is False and license_["canStartSelfHostedScan"] is False
    body = ready_body(org)
    assert body["ready"] is False and body["reasons"] == ["runner_limit_exceeded"]
    assert body["runnerOk"] is True  # the runners are fine; the license is what blocks
    # Removing a runner brings the tenant back within its plan.
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": second}))
    assert status == 200
    assert ready_body(org)["ready"] is True


def test_expired_license_is_not_ready(aws: AwsStack) -> None:
    org = unique_org()
    runner_id = create_runner(org, "r1")["_id"]
    bring_online(org, runner_id)
    put_license(org, licenseState="expired")
    body = ready_body(org)
    assert body["ready"] is False and body["reasons"] == ["license_inactive"]
    assert body["license"]["licenseState"] == "expired"
    assert body["license"]["canRegisterRunner"] is False and body["license"]["canStartSelfHostedScan"] is False
    put_license(org, licenseState="active")
    assert ready_body(org)["ready"] is True


def test_target_visibility_the_plan_forbids(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    runner_id = create_runner(org, "r1")["_id"]
    bring_online(org, runner_id)
    public, private = create_target(org, "public"), create_target(org, "private_internal")
    put_license(org, plan="free")  # downgrade: the private target stays, but may not be scanned
    body = ready_body(org, targetId=private)
    assert body["visibility"] == "private_internal" and body["visibilityOk"] is False
    assert body["ready"] is False and body["reasons"] == ["visibility_not_allowed"]
    assert body["runnerOk"] is True
    allowed = ready_body(org, targetId=public)
    assert allowed["visibility"] == "public" and allowed["visibilityOk"] is True and allowed["ready"] is True


def test_requested_runner_offline_or_busy(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    offline, online, busy = (create_runner(org, name)["_id"] for name in ("off", "on", "busy"))
    bring_online(org, online)
    bring_online(org, busy, current_jobs=1)
    body = ready_body(org, runnerId=offline)
    assert body["ready"] is False and body["runnerOk"] is False and body["selectedRunnerId"] is None
    assert body["reasons"] == ["runner_offline"]
    assert [runner["id"] for runner in body["runners"]] == [online]  # still lists the eligible ones
    body = ready_body(org, runnerId=busy)
    assert body["ready"] is False and body["reasons"] == ["runner_busy"] and body["selectedRunnerId"] is None
    body = ready_body(org, runnerId=online)
    assert body["ready"] is True and body["selectedRunnerId"] == online


def test_selection_prefers_most_free_slots_and_full_runners_are_not_eligible(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    small, large = create_runner(org, "small", concurrency=2)["_id"], create_runner(org, "large", concurrency=4)["_id"]
    bring_online(org, small, current_jobs=1)
    bring_online(org, large, current_jobs=1)
    body = ready_body(org)
    assert body["selectedRunnerId"] == large
    assert {runner["id"]: runner["currentJobs"] for runner in body["runners"]} == {small: 1, large: 1}
    bring_online(org, small, current_jobs=2)
    bring_online(org, large, current_jobs=4)
    body = ready_body(org)
    assert body["ready"] is False and body["reasons"] == ["all_runners_busy"] and body["runners"] == []


def test_concurrent_job_limit_reached(aws: AwsStack) -> None:
    org = unique_org()
    runner_id = create_runner(org, "r1", concurrency=2)["_id"]
    bring_online(org, runner_id)
    dynamo.client().update_item(
        TableName=orgs.table(),
        Key=orgs.org_key(org),
        UpdateExpression="SET activeJobs = :one",
        ExpressionAttributeValues=dynamo.values(one=1),
    )
    body = ready_body(org)
    assert body["ready"] is False and body["reasons"] == ["concurrent_job_limit_reached"]
    assert body["license"]["canStartSelfHostedScan"] is False


def test_unknown_or_other_tenants_target_and_runner_are_404(aws: AwsStack) -> None:
    owner, other = unique_org(), unique_org()
    runner_id = create_runner(owner, "r1")["_id"]
    target_id = create_target(owner)
    for query, field in [
        ({"targetId": target_id}, "targetId"),
        ({"runnerId": runner_id}, "runnerId"),
        ({"targetId": "tgt_0000000000000000"}, "targetId"),
        ({"runnerId": "rnr_0000000000000000"}, "runnerId"),
    ]:
        status, body = readiness(other, **query)
        assert status == 404 and body["error"]["field"] == field, (query, body)


def test_scope_and_bad_input(aws: AwsStack) -> None:
    org = unique_org()
    status, body = readiness(org, scopes="jobs:read targets:read")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body, _ = invoke(
        "ListRunnersWithReadiness", user_event("ListRunnersWithReadiness", org, scopes="jobs:read targets:read")
    )
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body = readiness(org, targetId="x" * 200)
    assert status == 400 and body["error"]["field"] == "targetId"
    for query, field in [({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"cursor": "%%%"}, "cursor")]:
        status, body, _ = invoke("ListRunnersWithReadiness", user_event("ListRunnersWithReadiness", org, query=query))
        assert status == 400 and body["error"]["field"] == field, (query, body)


def test_list_pages_runners_but_readiness_covers_the_whole_fleet(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    runner_ids = sorted(create_runner(org, f"r{index}")["_id"] for index in range(3))
    bring_online(org, runner_ids[-1])  # on the last page only
    first = list_with_readiness(org, limit="2")
    assert [runner["id"] for runner in first["runners"]] == runner_ids[:2] and first["nextCursor"]
    assert first["readiness"]["ready"] is True and first["readiness"]["selectedRunnerId"] == runner_ids[-1]
    second = list_with_readiness(org, limit="2", cursor=first["nextCursor"])
    assert [runner["id"] for runner in second["runners"]] == runner_ids[2:] and second["nextCursor"] is None
    assert second["readiness"] == first["readiness"]


def test_reading_a_whole_fleet_is_bounded(aws: AwsStack) -> None:
    """An operator's override can lift a tenant's runner limit: one request still holds at most
    `max_runners` runners (readiness over a larger fleet is over its first runners), read in pages."""
    from hangar.fleet import runners

    org = unique_org()
    requests = [
        {"PutRequest": {"Item": dynamo.to_item({"orgId": org, "runnerId": f"rnr_{index:016x}", "status": "offline"})}}
        for index in range(450)
    ]
    for start in range(0, len(requests), 25):
        aws.dynamodb.batch_write_item(RequestItems={"RunnersTable": requests[start : start + 25]})

    assert len(runners.list_all_runners(org)) == 450
    bounded = runners.list_all_runners(org, max_runners=300)
    assert [runner.runner_id for runner in bounded] == [f"rnr_{index:016x}" for index in range(300)]
