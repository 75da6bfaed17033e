"""The /v1 jobs API in-process against moto: create, list, get, cancel; idempotency, licenses, isolation."""

from __future__ import annotations

from typing import Any

import pytest
from builders import create_job, create_runner, heartbeat, live_runner, new_job, set_license
from jobs_helpers import cancel, get_job, org_item, polled_job, report, runner_item
from support import AwsStack, invoke, load_event, unique_org, user_event

V1_JOB_KEYS = {
    "id",
    "status",
    "type",
    "repositoryConfig",
    "repositoryName",
    "branch",
    "targetId",
    "labels",
    "runnerId",
    "attempts",
    "maxAttempts",
    "result",
    "error",
    "createdAt",
    "updatedAt",
}


def list_jobs(org: str, scopes: str | None = None, **query: str) -> tuple[int, Any]:
    event = user_event("ListJobs", org, query=query, **({"scopes": scopes} if scopes else {}))
    status, body, _ = invoke("ListJobs", event)
    return status, body


def create_target(org: str, visibility: str) -> str:
    body = {"name": "site", "url": "https://internal.example.com", "visibility": visibility}
    status, response, _ = invoke("CreateTarget", user_event("CreateTarget", org, body=body))
    assert status == 201, response
    target_id: str = response["id"]
    return target_id


def test_create_get_list_cancel(aws: AwsStack) -> None:
    org = unique_org()
    job = new_job(org, labels=["linux", "linux"], payload={"paths": ["infra/"]}, maxAttempts=2)
    assert set(job) >= V1_JOB_KEYS
    assert job["status"] == "queued"
    assert job["id"].startswith("job_")
    assert job["labels"] == ["linux"]
    assert job["payload"] == {"paths": ["infra/"]}
    assert job["attempts"] == 0
    assert job["maxAttempts"] == 2
    assert job["timeoutSeconds"] == 3600
    assert job["runnerId"] is None
    assert job["result"] is None
    assert job["error"] is None
    assert get_job(org, job["id"]) == job
    status, body = list_jobs(org)
    assert status == 200
    assert [item["id"] for item in body["jobs"]] == [job["id"]]
    assert body["nextCursor"] is None
    status, body = cancel(org, job["id"])
    assert status == 200
    assert body["status"] == "cancelled"
    assert body["cancelRequested"] is False
    assert get_job(org, job["id"])["status"] == "cancelled"
    # Cancelling again is a no-op.
    status, again = cancel(org, job["id"])
    assert status == 200
    assert again["status"] == "cancelled"


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    status, created, _ = invoke("CreateJob", load_event("CreateJob"))
    assert status == 201, created
    assert created["labels"] == ["linux"]
    assert created["repositoryName"] == "org/terraform-infra"
    status, body, _ = invoke("ListJobs", load_event("ListJobs"))
    assert status == 200
    assert len(body["jobs"]) >= 1
    for logical_id in ("GetJob", "CancelJob"):
        status, body, _ = invoke(logical_id, load_event(logical_id))
        assert status == 404, (logical_id, body)
        assert body["error"]["code"] == "not_found", (logical_id, body)


def test_list_is_newest_first_pages_and_filters(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org, "team")
    ids = [new_job(org, labels=["linux"])["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body = list_jobs(org, **query)
        assert status == 200
        assert len(body["jobs"]) <= 2
        seen += [item["id"] for item in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    runner = live_runner(org, ["linux"])
    claimed = polled_job(org, runner, ["linux"])
    assert claimed is not None
    assert claimed["_id"] == ids[0]
    cancel(org, ids[1])
    status, body = list_jobs(org, status="queued")
    assert status == 200
    assert {item["id"] for item in body["jobs"]} == set(ids[2:])
    status, body = list_jobs(org, status="cancelled")
    assert [item["id"] for item in body["jobs"]] == [ids[1]]
    status, body = list_jobs(org, runnerId=runner)
    assert [item["id"] for item in body["jobs"]] == [ids[0]]
    assert body["jobs"][0]["status"] == "assigned"
    # A filtered list pages too: limit 1 over the three queued jobs.
    status, body = list_jobs(org, status="queued", limit="1")
    assert len(body["jobs"]) == 1
    assert body["nextCursor"]
    status, rest = list_jobs(org, status="queued", limit="5", cursor=body["nextCursor"])
    assert {item["id"] for item in rest["jobs"]} | {body["jobs"][0]["id"]} == set(ids[2:])


def test_idempotency_key_returns_the_first_job(aws: AwsStack) -> None:
    org = unique_org()
    key = {"Idempotency-Key": "create-scan-42"}
    status, first, headers = create_job(org, headers=key, labels=["linux"])
    assert status == 201
    assert "Idempotent-Replayed" not in headers
    status, again, headers = create_job(org, headers=key, labels=["linux"])
    assert status == 201
    assert again == first
    assert headers.get("Idempotent-Replayed") == "true"
    status, body = list_jobs(org)
    assert [item["id"] for item in body["jobs"]] == [first["id"]]
    # The same key with a different body is refused (Powertools payload validation).
    status, body, _ = create_job(org, headers=key, labels=["gpu"])
    assert status == 409
    assert body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["field"] == "idempotency-key"
    # Keys are per tenant: another org's identical key creates its own job.
    status, other, _ = create_job(unique_org(), headers=key, labels=["linux"])
    assert status == 201
    assert other["id"] != first["id"]
    # Without a key every create is a new job.
    assert new_job(org)["id"] != new_job(org)["id"]


def test_a_failed_create_does_not_burn_the_idempotency_key(aws: AwsStack) -> None:
    org = unique_org()
    key = {"Idempotency-Key": "retry-me"}
    status, body, _ = create_job(org, headers=key, runnerId="rnr_missing")
    assert status == 404
    assert body["error"]["field"] == "runnerId"
    runner = create_runner(org)["_id"]
    status, body, _ = create_job(org, headers={"Idempotency-Key": "retry-2"}, runnerId=runner)
    assert status == 201
    assert body["runnerId"] == runner
    assert body["pinnedRunnerId"] == runner
    status, body, _ = create_job(org, headers=key, runnerId="rnr_missing")
    assert status == 404  # executed again, not replayed


def test_other_tenant_gets_404(aws: AwsStack) -> None:
    org = unique_org()
    job = new_job(org)
    other = unique_org()
    for logical_id in ("GetJob", "CancelJob"):
        status, body, _ = invoke(logical_id, user_event(logical_id, other, path_params={"jobId": job["id"]}))
        assert status == 404, (logical_id, body)
        assert body["error"]["code"] == "not_found", (logical_id, body)
    status, body = list_jobs(other)
    assert status == 200
    assert body["jobs"] == []
    # A pin on another tenant's runner is a 404 naming runnerId.
    foreign_runner = create_runner(other)["_id"]
    status, body, _ = create_job(org, runnerId=foreign_runner)
    assert status == 404
    assert body["error"]["field"] == "runnerId"
    assert get_job(org, job["id"])["status"] == "queued"


def test_scopes(aws: AwsStack) -> None:
    org = unique_org()
    job = new_job(org)
    status, body, _ = create_job(org, scopes="jobs:read")
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"
    assert list_jobs(org, scopes="jobs:manage")[0] == 403
    assert list_jobs(org, scopes="jobs:read")[0] == 200
    status, _, _ = invoke("GetJob", user_event("GetJob", org, scopes="runners:read", path_params={"jobId": job["id"]}))
    assert status == 403
    status, _, _ = invoke("GetJob", user_event("GetJob", org, scopes="jobs:read", path_params={"jobId": job["id"]}))
    assert status == 200
    assert cancel(org, job["id"], scopes="jobs:read")[0] == 403
    assert get_job(org, job["id"])["status"] == "queued"


@pytest.mark.parametrize(
    ("fields", "expected", "field"),
    [
        ({"type": None}, 400, "type"),
        ({"type": ""}, 400, "type"),
        ({"type": "x" * 65}, 400, "type"),
        ({"type": "scan now"}, 400, "type"),
        ({"labels": ["bad label"]}, 400, "labels.0"),
        ({"labels": "linux"}, 400, "labels"),
        ({"maxAttempts": 0}, 400, "maxAttempts"),
        ({"maxAttempts": 11}, 400, "maxAttempts"),
        ({"timeoutSeconds": 0}, 400, "timeoutSeconds"),
        ({"timeoutSeconds": "60"}, 400, "timeoutSeconds"),
        ({"timeoutSeconds": 10**9}, 400, "timeoutSeconds"),
        ({"queueTimeoutSeconds": -1}, 400, "queueTimeoutSeconds"),
        ({"payload": [1, 2]}, 400, "payload"),
        ({"payload": {"x": "y" * (33 * 1024)}}, 413, "payload"),
        ({"repositoryName": "a\nb"}, 400, "repositoryName"),
        ({"colour": "red"}, 400, "colour"),
        ({"targetId": "tgt_missing"}, 404, "targetId"),
        ({"runnerId": "rnr_missing"}, 404, "runnerId"),
    ],
)
def test_bad_input_names_the_field(aws: AwsStack, fields: dict[str, Any], expected: int, field: str) -> None:
    org = unique_org()
    body = {key: value for key, value in fields.items() if value is not None}
    if fields.get("type", "scan") is None:
        status, response, _ = invoke(
            "CreateJob", user_event("CreateJob", org, body={"repositoryName": "x", "labels": []})
        )
    else:
        status, response, _ = create_job(org, **body)
    assert status == expected, response
    assert response["error"]["field"] == field, response


def test_bad_bodies_and_queries(aws: AwsStack) -> None:
    org = unique_org()
    for raw in ("{not json", "[1]", None):
        status, response, _ = invoke("CreateJob", user_event("CreateJob", org, body=raw))
        assert status == 400, (raw, response)
        assert response["error"]["field"] == "body", (raw, response)
    status, response, _ = invoke("CreateJob", user_event("CreateJob", org, body={"type": "s", "pad": "x" * 70000}))
    assert status == 413
    assert response["error"]["field"] == "body"
    for query, field in [({"status": "done"}, "status"), ({"limit": "0"}, "limit"), ({"cursor": "nope"}, "cursor")]:
        status, response = list_jobs(org, **query)
        assert status == 400, (query, response)
        assert response["error"]["field"] == field, (query, response)
    status, response, _ = create_job(org, headers={"Idempotency-Key": "x" * 300})
    assert status == 400, response
    assert response["error"]["field"] == "idempotency-key", response


def test_inactive_license_refuses_new_jobs(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org, "team", licenseState="suspended")
    status, body, _ = create_job(org)
    assert status == 403
    assert body["error"]["code"] == "license_inactive"
    status, body = list_jobs(org)
    assert status == 200
    assert body["jobs"] == []


def test_target_must_exist_and_its_visibility_be_allowed(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org, "team")
    private = create_target(org, "private_internal")
    job = new_job(org, targetId=private)
    assert job["targetId"] == private
    # Downgraded to free: private targets are no longer allowed.
    set_license(org, "free")
    status, body, _ = create_job(org, targetId=private)
    assert status == 403
    assert body["error"]["code"] == "visibility_not_allowed"
    # Another tenant's target is a 404 naming targetId.
    status, body, _ = create_job(unique_org(), targetId=private)
    assert status == 404
    assert body["error"]["field"] == "targetId"


def test_pinned_runner_must_have_the_labels(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, labels=["linux"])["_id"]
    status, body, _ = create_job(org, runnerId=runner, labels=["linux", "gpu"])
    assert status == 400
    assert body["error"]["field"] == "runnerId"
    assert "gpu" in body["error"]["message"]
    assert new_job(org, runnerId=runner, labels=["linux"])["runnerId"] == runner


def test_cancel_semantics(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org, "team")
    runner = live_runner(org, ["linux"], concurrency=2)
    running = new_job(org)
    finished = new_job(org)
    claimed = polled_job(org, runner)
    assert claimed is not None
    assert claimed["_id"] == running["id"]
    assert report(org, runner, running["id"], "running")[0] == 200
    assert polled_job(org, runner) is not None
    assert report(org, runner, finished["id"], "completed", result={"ok": True})[0] == 200
    # A completed job can no longer be cancelled.
    status, body = cancel(org, finished["id"])
    assert status == 409
    assert body["error"]["code"] == "invalid_transition"
    assert runner_item(org, runner)["currentJobs"] == 1
    assert org_item(org)["activeJobs"] == 1
    # A running job is cancelled at once: the slot is freed and the runner is told.
    status, body = cancel(org, running["id"])
    assert status == 200
    assert body["status"] == "cancelled"
    assert body["cancelRequested"] is True
    assert body["runnerId"] == runner
    assert runner_item(org, runner)["currentJobs"] == 0
    assert org_item(org)["activeJobs"] == 0
    assert heartbeat(org, runner)["cancelledJobs"] == [running["id"]]
    status, body = report(org, runner, running["id"], "completed")
    assert status == 200
    assert body["data"] == {"jobId": running["id"], "status": "cancelled", "cancelRequested": True}
    assert heartbeat(org, runner)["cancelledJobs"] == []
    assert get_job(org, running["id"])["status"] == "cancelled"
    assert cancel(org, running["id"])[0] == 200
