"""POST /api/runners/heartbeat (seed 000) in-process: one conditional write, status in both dialects."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import builders
import pytest
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.store import dynamo
from hangar.store.runners import live_shard
from jobs_helpers import get_job, org_item
from support import AwsStack, invoke, load_event, runner_event, unique_org, user_event


@pytest.fixture
def dynamo_calls(aws: AwsStack) -> Iterator[list[str]]:
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = dynamo.client().meta.events
    events.register("before-call.dynamodb.*", record)
    yield calls
    events.unregister("before-call.dynamodb.*", record)


# Every runner here is a linux runner named hb-runner.
create_runner = partial(builders.create_runner, name="hb-runner", labels=["linux"])


def heartbeat(org: str, runner_id: str, body: Any, token_version: int = 1) -> tuple[int, Any]:
    status, response, _ = invoke("Heartbeat", runner_event("Heartbeat", org, runner_id, token_version, body=body))
    return status, response


def runner_item(aws: AwsStack, org: str, runner_id: str) -> dict[str, Any]:
    raw = aws.dynamodb.get_item(TableName="RunnersTable", Key={"orgId": {"S": org}, "runnerId": {"S": runner_id}}).get(
        "Item"
    )
    item = dynamo.from_item(raw)
    assert item is not None
    return item


def views(org: str, runner_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runner as GET /api/runners/{id} and as GET /v1/runners show it."""
    status, api, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": runner_id}))
    assert status == 200, api
    status, v1, _ = invoke("ListRunnersWithReadiness", user_event("ListRunnersWithReadiness", org))
    assert status == 200, v1
    (listed,) = [runner for runner in v1["runners"] if runner["id"] == runner_id]
    return api["data"], listed


def test_heartbeat_is_one_write_and_erases_the_setup_token(aws: AwsStack, dynamo_calls: list[str]) -> None:
    org = unique_org()
    created = create_runner(org)
    rid = created["_id"]
    assert runner_item(aws, org, rid).get("setupToken")
    dynamo_calls.clear()
    status, response = heartbeat(
        org,
        rid,
        {
            "status": "online",
            "version": "1.2.0",
            "systemInfo": {"cpu": 4, "memory": 8589934592, "disk": 107374182400},
            "containerEngine": "docker",
            "configuredConcurrency": 2,
            "capabilities": {"localProviderSecrets": True},
            "providerState": {"modelProvider": "openai-codex"},
        },
    )
    assert status == 200, response
    assert dynamo_calls == ["UpdateItem"]
    assert response == {
        "success": True,
        "data": {
            "_id": rid,
            "status": "online",
            "heartbeatIntervalSeconds": get_settings().heartbeat_interval_seconds,
            "cancelledJobs": [],
        },
    }
    item = runner_item(aws, org, rid)
    assert "setupToken" not in item
    assert item["status"] == "online" and item["version"] == "1.2.0"
    assert item["systemInfo"] == {"cpu": 4, "memory": 8589934592, "disk": 107374182400}
    assert item["containerEngine"] == "docker" and item["configuredConcurrency"] == 2
    assert item["liveShard"] == live_shard(rid)
    assert abs(item["lastHeartbeatEpoch"] - clock.now()) < 5

    api, v1 = views(org, rid)
    assert api["status"] == v1["status"] == "online"
    assert api["lastHeartbeat"] == v1["lastHeartbeatAt"] == item["lastHeartbeatAt"]
    assert api["version"] == v1["version"] == "1.2.0"
    assert api["systemInfo"]["cpu"] == 4
    assert v1["capabilities"] == {"localProviderSecrets": True} and v1["containerEngine"] == "docker"


def test_minimal_heartbeat_keeps_what_was_reported_before(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    assert heartbeat(org, rid, {"status": "online", "version": "1.0.0"})[0] == 200
    status, response = heartbeat(org, rid, {"status": "busy"})
    assert status == 200 and response["data"]["status"] == "busy"
    item = runner_item(aws, org, rid)
    assert item["version"] == "1.0.0" and item["status"] == "busy"


def test_stale_runner_reads_offline_in_both_dialects(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    assert heartbeat(org, rid, {"status": "online"})[0] == 200
    stale_after = get_settings().stale_after_seconds
    clock.advance(stale_after - 5)
    api, v1 = views(org, rid)
    assert api["status"] == v1["status"] == "online"
    clock.advance(10)
    api, v1 = views(org, rid)
    assert api["status"] == v1["status"] == "offline"
    assert api["lastHeartbeat"] == v1["lastHeartbeatAt"] is not None
    # The next heartbeat brings it back at once.
    assert heartbeat(org, rid, {"status": "online"})[0] == 200
    api, v1 = views(org, rid)
    assert api["status"] == v1["status"] == "online"


def test_cancelled_jobs_are_returned_sorted(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    aws.dynamodb.update_item(
        TableName="RunnersTable",
        Key={"orgId": {"S": org}, "runnerId": {"S": rid}},
        UpdateExpression="ADD cancelledJobs :jobs",
        ExpressionAttributeValues={":jobs": {"SS": ["job_b", "job_a"]}},
    )
    status, response = heartbeat(org, rid, {"status": "busy"})
    assert status == 200 and response["data"]["cancelledJobs"] == ["job_a", "job_b"]


def test_regenerated_or_deleted_runner_token_is_refused(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    status, response = heartbeat(org, rid, {"status": "online"}, token_version=2)
    assert status == 401 and response["error"]["code"] == "token_regenerated", response
    assert "regenerated" in response["error"]["message"]
    assert response["success"] is False
    assert "lastHeartbeatAt" not in runner_item(aws, org, rid)  # the refused heartbeat wrote nothing
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": rid}))
    assert status == 200
    status, response = heartbeat(org, rid, {"status": "online"})
    assert status == 401 and response["error"]["code"] == "runner_deleted", response


def test_offline_heartbeat_takes_the_runner_offline_at_once(aws: AwsStack) -> None:
    """The agent's last heartbeat when it stops cleanly: offline now, not online for another 90 s."""
    org = unique_org()
    rid = create_runner(org)["_id"]
    assert heartbeat(org, rid, {"status": "online"})[0] == 200
    assert "liveShard" in runner_item(aws, org, rid)
    status, response = heartbeat(org, rid, {"status": "offline", "version": "1.2.0"})
    assert status == 200, response
    assert response["data"]["status"] == "offline"
    api, v1 = views(org, rid)
    assert api["status"] == "offline"
    assert v1["status"] == "offline"
    item = runner_item(aws, org, rid)
    assert item["status"] == "offline"
    assert "liveShard" not in item  # out of the live index: the sweeper has nothing left to do for it
    # Its next start brings it back with its first heartbeat.
    assert heartbeat(org, rid, {"status": "online"})[0] == 200
    assert views(org, rid)[0]["status"] == "online"


def test_offline_heartbeat_recovers_the_jobs_the_runner_still_holds(aws: AwsStack) -> None:
    # Its final reports did not get through: the job goes back to the queue now, not after the stale cut-off.
    org, rid, job_id = builders.running_job()
    status, response = heartbeat(org, rid, {"status": "offline"})
    assert status == 200, response
    job = get_job(org, job_id)
    assert job["status"] == "queued"
    assert job["runnerId"] is None
    item = runner_item(aws, org, rid)
    assert item["currentJobs"] == 0
    assert "heldJobs" not in item
    assert org_item(org)["activeJobs"] == 0


def test_offline_heartbeat_with_an_old_token_changes_nothing(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    assert heartbeat(org, rid, {"status": "online"})[0] == 200
    status, response = heartbeat(org, rid, {"status": "offline"}, token_version=2)
    assert status == 401, response
    assert response["error"]["code"] == "token_regenerated"
    item = runner_item(aws, org, rid)
    assert item["status"] == "online"
    assert "liveShard" in item
    assert invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": rid}))[0] == 200
    status, response = heartbeat(org, rid, {"status": "offline"})
    assert status == 401, response
    assert response["error"]["code"] == "runner_deleted"


def test_another_tenants_runner_id_is_refused(aws: AwsStack) -> None:
    """A runner principal only ever reaches its own tenant's item: elsewhere the id does not exist."""
    rid = create_runner(unique_org())["_id"]
    status, response = heartbeat(unique_org(), rid, {"status": "online"})
    assert status == 401, response


def test_missing_runner_principal_is_401(aws: AwsStack) -> None:
    event = load_event("Heartbeat")
    event["requestContext"]["authorizer"] = {"principalType": "jwt", "orgId": "demo"}
    status, response, _ = invoke("Heartbeat", event)
    assert status == 401, response


def test_bad_heartbeat_input_names_the_field(aws: AwsStack, dynamo_calls: list[str]) -> None:
    org = unique_org()
    rid = "rnr_0123456789abcdef"
    cases = [
        ("{not json", "body"),
        (None, "body"),
        ({}, "status"),
        ({"status": "stopped"}, "status"),
        ({"status": "OFFLINE"}, "status"),
        ({"status": "online", "mood": "happy"}, "mood"),
        ({"status": "online", "version": ""}, "version"),
        ({"status": "online", "systemInfo": {"cpu": -1}}, "systemInfo.cpu"),
        ({"status": "online", "systemInfo": {"memory": 1e30}}, "systemInfo.memory"),
        ({"status": "online", "systemInfo": {"gpu": 1}}, "systemInfo.gpu"),
        ({"status": "online", "systemInfo": {"disk": "lots"}}, "systemInfo.disk"),
        ({"status": "online", "configuredConcurrency": 65}, "configuredConcurrency"),
        ({"status": "online", "capabilities": {"x": "y" * 5000}}, "capabilities"),
        ({"status": "online", "providerState": "on"}, "providerState"),
        ({"status": "online", "capabilities": {"": True}}, "capabilities"),
        ({"status": "online", "capabilities": {"big": 10**40}}, "capabilities"),
        ('{"status": "online", "capabilities": {"x": NaN}}', "capabilities"),
        ('{"status": "online", "systemInfo": {"cpu": Infinity}}', "systemInfo.cpu"),
    ]
    for body, field in cases:
        status, response = heartbeat(org, rid, body)
        assert status == 400 and response["error"]["field"] == field, (body, response)
    assert dynamo_calls == []


def test_null_system_figures_are_accepted(aws: AwsStack) -> None:
    """The reference agent sends null for a figure it cannot read."""
    org = unique_org()
    rid = create_runner(org)["_id"]
    status, response = heartbeat(org, rid, {"status": "online", "systemInfo": {"cpu": 2, "memory": None}})
    assert status == 200, response
    assert runner_item(aws, org, rid)["systemInfo"] == {"cpu": 2}
