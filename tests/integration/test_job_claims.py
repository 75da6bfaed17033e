"""Polling and status reports in-process: label routing, pins, slot and tenant limits, transitions,
the token guard, cancellation, and the DynamoDB calls each costs."""

from __future__ import annotations

import pytest
from builders import create_runner, heartbeat, live_runner, new_job, set_license
from hangar.core import clock
from hangar.core.config import get_settings
from jobs_helpers import cancel, dynamodb_calls, get_job, org_item, poll, polled_job, report, runner_item
from support import AwsStack, invoke, load_event, unique_org, user_event

POLL_JOB_KEYS = {
    "_id",
    "type",
    "repositoryConfig",
    "repositoryName",
    "branch",
    "targetId",
    "labels",
    "payload",
    "timeoutSeconds",
    "attempts",
    "maxAttempts",
    "logBytes",
    "truncated",
}


def test_poll_returns_the_seed_shape(org: str) -> None:
    runner = live_runner(org, ["linux"])
    job = new_job(org, labels=["linux"], payload={"depth": 2}, timeoutSeconds=600)
    status, body = poll(org, runner, ["linux"])
    assert status == 200
    assert body["success"] is True
    assert body["data"]["pollIntervalSeconds"] == get_settings().poll_interval_seconds
    claimed = body["data"]["job"]
    assert set(claimed) == POLL_JOB_KEYS
    assert claimed["_id"] == job["id"]
    assert claimed["repositoryConfig"] == "abc123"
    assert claimed["branch"] == "main"
    assert claimed["payload"] == {"depth": 2}
    assert claimed["timeoutSeconds"] == 600
    assert claimed["attempts"] == 1
    stored = get_job(org, job["id"])
    assert stored["status"] == "assigned"
    assert stored["runnerId"] == runner
    assert stored["attempts"] == 1
    assert runner_item(org, runner)["currentJobs"] == 1
    assert org_item(org)["activeJobs"] == 1
    # The queue is empty now.
    assert polled_job(org, runner, ["linux"]) is None


def test_oldest_job_first(org: str) -> None:
    runner = live_runner(org, concurrency=3)
    ids = [new_job(org)["id"] for _ in range(3)]
    claimed = [polled_job(org, runner) for _ in range(3)]
    assert [job["_id"] for job in claimed if job] == ids


def test_label_routing(org: str) -> None:
    linux_only = live_runner(org, ["linux"], name="linux")
    gpu = live_runner(org, ["linux", "gpu", "x64"], name="gpu")
    job = new_job(org, labels=["linux", "gpu"])
    assert polled_job(org, linux_only, ["linux"]) is None
    claimed = polled_job(org, gpu, ["linux", "gpu", "x64"])
    assert claimed is not None
    assert claimed["_id"] == job["id"]


def test_a_job_it_cannot_run_does_not_block_one_it_can(org: str) -> None:
    runner = live_runner(org, ["linux"])
    new_job(org, labels=["gpu"])
    runnable = new_job(org, labels=["linux"])
    claimed = polled_job(org, runner, ["linux"])
    assert claimed is not None
    assert claimed["_id"] == runnable["id"]


def test_a_queue_head_of_jobs_it_cannot_run_is_looked_past(org: str) -> None:
    runner = live_runner(org, ["linux"])
    for _ in range(30):  # more than one page of the queue
        new_job(org, labels=["gpu"])
    runnable = new_job(org, labels=["linux"])
    with dynamodb_calls() as calls:
        claimed = polled_job(org, runner, ["linux"])
    assert claimed is not None
    assert claimed["_id"] == runnable["id"]
    assert calls == ["Query", "Query", "TransactWriteItems"]


def test_stale_label_hint_never_misroutes(org: str) -> None:
    runner = live_runner(org, ["linux", "gpu"])
    job = new_job(org, labels=["gpu"])
    status, body, _ = invoke(
        "UpdateRunner", user_event("UpdateRunner", org, path_params={"runnerId": runner}, body={"labels": ["linux"]})
    )
    assert status == 200, body
    # The authorizer's cached context still says gpu; the runner's live labels decide.
    assert polled_job(org, runner, ["linux", "gpu"]) is None
    assert get_job(org, job["id"])["status"] == "queued"
    assert runner_item(org, runner)["currentJobs"] == 0
    assert org_item(org)["activeJobs"] == 0


def test_pinned_job_goes_only_to_its_runner(org: str) -> None:
    first = live_runner(org, ["linux"], name="first")
    second = live_runner(org, ["linux"], name="second")
    job = new_job(org, labels=["linux"], runnerId=second)
    assert polled_job(org, first, ["linux"]) is None
    claimed = polled_job(org, second, ["linux"])
    assert claimed is not None
    assert claimed["_id"] == job["id"]


def test_runner_slots(org: str) -> None:
    runner = live_runner(org, concurrency=1)
    first, second = new_job(org), new_job(org)
    assert polled_job(org, runner)["_id"] == first["id"]  # type: ignore[index]
    assert polled_job(org, runner) is None
    assert get_job(org, second["id"])["status"] == "queued"
    assert report(org, runner, first["id"], "completed")[0] == 200
    assert polled_job(org, runner)["_id"] == second["id"]  # type: ignore[index]


def test_tenant_concurrent_job_limit(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org, "team", concurrentJobLimit=1)
    first_runner = live_runner(org, concurrency=2, name="a")
    second_runner = live_runner(org, concurrency=2, name="b")
    first, second = new_job(org), new_job(org)
    assert polled_job(org, first_runner)["_id"] == first["id"]  # type: ignore[index]
    assert polled_job(org, second_runner) is None
    assert polled_job(org, first_runner) is None
    assert report(org, first_runner, first["id"], "failed", error="exit 2")[0] == 200
    assert polled_job(org, second_runner)["_id"] == second["id"]  # type: ignore[index]
    assert org_item(org)["activeJobs"] == 1


def test_no_claims_while_the_license_is_inactive(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    set_license(org, "team", licenseState="expired")
    assert polled_job(org, runner) is None
    assert get_job(org, job["id"])["status"] == "queued"


def test_only_live_runners_get_jobs(org: str) -> None:
    silent = create_runner(org, name="never-heartbeated")["_id"]
    new_job(org)
    assert polled_job(org, silent) is None
    live = live_runner(org, name="live")
    clock.advance(get_settings().stale_after_seconds + 5)
    assert polled_job(org, live) is None  # its heartbeat is stale: it reads as offline
    heartbeat(org, live)
    assert polled_job(org, live) is not None


def test_status_transitions(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    job_id = job["id"]
    status, body = report(org, runner, job_id, "running")
    assert status == 200
    assert body["data"] == {"jobId": job_id, "status": "running", "cancelRequested": False}
    status, body = report(org, runner, job_id, "running")
    assert status == 200
    assert body["data"]["status"] == "running"  # repeating is a no-op
    status, body = report(org, runner, job_id, "failed", error="terraform exited 1", result={"exitCode": 1})
    assert status == 200
    assert body["data"]["status"] == "failed"
    stored = get_job(org, job_id)
    assert stored["error"] == {"code": "job_failed", "message": "terraform exited 1"}
    assert stored["result"] == {"exitCode": 1}
    assert stored["finishedAt"]
    assert stored["startedAt"]
    assert report(org, runner, job_id, "failed")[0] == 200
    for wrong in ("running", "completed"):
        status, body = report(org, runner, job_id, wrong)
        assert status == 409, body
        assert body["error"]["code"] == "invalid_transition", body
    assert runner_item(org, runner)["currentJobs"] == 0
    assert org_item(org)["activeJobs"] == 0
    assert runner_item(org, runner)["jobsCompleted"] == 0


def test_completion_counts_and_frees_the_slot(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    status, body = report(org, runner, job["id"], "completed", result={"findings": 3})
    assert status == 200
    assert body["data"]["status"] == "completed"
    assert get_job(org, job["id"])["result"] == {"findings": 3}
    item = runner_item(org, runner)
    assert item["currentJobs"] == 0
    assert item["jobsCompleted"] == 1
    assert org_item(org)["activeJobs"] == 0
    assert report(org, runner, job["id"], "completed")[0] == 200  # no-op: counted once
    assert runner_item(org, runner)["jobsCompleted"] == 1


def test_only_the_assigned_runner_may_report(org: str) -> None:
    runner = live_runner(org, name="holder")
    other = live_runner(org, name="other")
    job = new_job(org)
    polled_job(org, runner)
    status, body = report(org, other, job["id"], "completed")
    assert status == 404
    assert body["success"] is False
    assert body["error"]["code"] == "not_found"
    status, body = report(unique_org(), runner, job["id"], "completed")
    assert status in (401, 404)  # another tenant: the job (and this runner) do not exist there
    status, body = report(org, runner, "job_missing", "running")
    assert status == 404
    # A queued job has no runner yet: nobody may report on it.
    queued = new_job(org)
    assert report(org, other, queued["id"], "running")[0] == 404
    assert get_job(org, job["id"])["status"] == "assigned"


def test_result_and_error_limits(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    status, body = report(org, runner, job["id"], "completed", result={"blob": "x" * (65 * 1024)})
    # 413: the result (the body it arrives in is over the 64 KiB request limit too).
    assert status == 413, body
    assert body["error"]["field"] == "result", body
    status, body = report(org, runner, job["id"], "failed", error="e" * 4097)
    assert status == 400
    assert body["error"]["field"] == "error"
    status, body = report(org, runner, job["id"], "completed", error="not for completed")
    assert status == 400
    assert body["error"]["field"] == "error"
    status, body = report(org, runner, job["id"], "running", result={"early": True})
    assert status == 400
    assert body["error"]["field"] == "result"
    assert get_job(org, job["id"])["status"] == "assigned"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "running"}, "jobId"),
        ({"jobId": "job_x", "status": "done"}, "status"),
        ({"jobId": "job_x", "status": "queued"}, "status"),
        ({"jobId": "job_x", "status": "running", "extra": 1}, "extra"),
        ({"jobId": "job_x", "status": "completed", "result": [1]}, "result"),
    ],
)
def test_bad_status_input_names_the_field(org: str, body: dict[str, object], field: str) -> None:
    runner = live_runner(org)
    from support import runner_event

    status, response, _ = invoke("UpdateJobStatus", runner_event("UpdateJobStatus", org, runner, body=body))
    assert status == 400, response
    assert response["error"]["field"] == field, response


def test_regenerated_token_is_refused(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    status, body, _ = invoke(
        "RegenerateRunnerToken", user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner})
    )
    assert status == 200, body
    new_job(org)
    # The authorizer's cached context still carries tokenVersion 1.
    status, body = poll(org, runner, token_version=1)
    assert status == 401
    assert body["error"]["code"] == "token_regenerated"
    status, body = report(org, runner, job["id"], "completed", token_version=1)
    assert status == 401
    assert body["error"]["code"] == "token_regenerated"
    assert get_job(org, job["id"])["status"] == "assigned"
    assert report(org, runner, job["id"], "completed", token_version=2)[0] == 200


def test_an_empty_poll_with_a_regenerated_token_is_refused(org: str) -> None:
    """Was 200 {"job": null} while the authorizer's Allow was cached (issue 10, item 1): the token version
    was only checked inside the claim, and an empty queue makes no claim."""
    runner = live_runner(org)
    status, body, _ = invoke(
        "RegenerateRunnerToken", user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner})
    )
    assert status == 200, body
    status, body = poll(org, runner, token_version=1)
    assert status == 401, body
    assert body["error"]["code"] == "token_regenerated", body
    status, body = poll(org, runner, token_version=2)
    assert status == 200, body
    assert body["data"]["job"] is None, body


def test_an_empty_poll_for_a_deleted_runner_is_refused(org: str) -> None:
    runner = live_runner(org)
    assert invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner}))[0] == 200
    status, body = poll(org, runner)
    assert status == 401, body
    assert body["error"]["code"] == "runner_deleted", body


def test_an_empty_poll_sees_labels_added_since_the_token_was_cached(org: str) -> None:
    """The runner's item has the last word on its labels: the authorizer's copy may be minutes old."""
    runner = live_runner(org, ["linux"])
    job = new_job(org, labels=["gpu"])
    body = {"labels": ["linux", "gpu"]}
    status, updated, _ = invoke(
        "UpdateRunner", user_event("UpdateRunner", org, body=body, path_params={"runnerId": runner})
    )
    assert status == 200, updated
    claimed = polled_job(org, runner, ["linux"])  # the cached context still says only "linux"
    assert claimed is not None
    assert claimed["_id"] == job["id"]


def test_deleted_runner_token_is_refused(org: str) -> None:
    runner = live_runner(org)
    new_job(org)
    invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner}))
    status, body = poll(org, runner)
    assert status == 401
    assert body["error"]["code"] == "runner_deleted"


def test_cancelled_while_held_is_told_to_the_runner(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    report(org, runner, job["id"], "running")
    assert cancel(org, job["id"])[0] == 200
    assert heartbeat(org, runner)["cancelledJobs"] == [job["id"]]
    # The slot is free at once: a new job can be claimed before the runner even reports.
    replacement = new_job(org)
    assert polled_job(org, runner)["_id"] == replacement["id"]  # type: ignore[index]
    status, body = report(org, runner, job["id"], "failed", error="killed")
    assert status == 200
    assert body["data"] == {"jobId": job["id"], "status": "cancelled", "cancelRequested": True}
    assert heartbeat(org, runner)["cancelledJobs"] == []
    assert get_job(org, job["id"])["status"] == "cancelled"
    assert get_job(org, job["id"])["error"] is None
    assert runner_item(org, runner)["currentJobs"] == 1
    assert org_item(org)["activeJobs"] == 1


def test_dynamodb_call_counts(org: str) -> None:
    runner = live_runner(org, ["linux"])
    with dynamodb_calls() as calls:
        assert polled_job(org, runner, ["linux"]) is None
    assert calls == ["Query", "GetItem"]  # the queue, then the runner: is the token still its token?
    job = new_job(org, labels=["linux"])
    with dynamodb_calls() as calls:
        assert polled_job(org, runner, ["linux"]) is not None
    assert calls == ["Query", "TransactWriteItems"]
    with dynamodb_calls() as calls:
        assert report(org, runner, job["id"], "running")[0] == 200
    assert calls == ["TransactWriteItems"]
    with dynamodb_calls() as calls:
        assert report(org, runner, job["id"], "running")[0] == 200  # no-op: told apart without a read
    assert calls == ["TransactWriteItems"]
    with dynamodb_calls() as calls:
        assert report(org, runner, job["id"], "completed")[0] == 200
    assert calls == ["TransactWriteItems"]


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    # The fixtures' runner does not exist: its token is refused, on an empty poll too.
    status, body, _ = invoke("PollJob", load_event("PollJob"))
    assert status == 401, body
    assert body["error"]["code"] == "runner_deleted", body
    status, body, _ = invoke("UpdateJobStatus", load_event("UpdateJobStatus"))
    assert status == 401
    assert body["success"] is False
