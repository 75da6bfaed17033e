"""Jobs over real HTTP against `python -m local`: exactly-once claims under contention, a job's whole
life through the API and the agent routes, and recovery of a lost runner's job by the sweeper."""

from __future__ import annotations

import threading
import time
from typing import Any

from http_builders import create_job, create_runner, get_job, heartbeat, poll, report, set_license, user_jwt

from local.testing import LocalApi

STALE_AFTER_SECONDS = 90


def test_ten_runners_claim_fifty_jobs_exactly_once(local_api: LocalApi, org: str) -> None:
    job_limit, runner_concurrency, runner_count, job_count = 8, 2, 10, 50
    set_license(local_api, org, plan="enterprise", concurrentJobLimit=job_limit)
    created = [create_runner(local_api, org, f"worker-{i}", ["linux"], runner_concurrency) for i in range(runner_count)]
    runners = [(runner["_id"], runner["token"]) for runner in created]
    for _, token in runners:
        heartbeat(local_api, token)
    job_ids = {create_job(local_api, org, labels=["linux"])["id"] for _ in range(job_count)}

    lock = threading.Lock()
    claims: list[tuple[str, str]] = []  # (job id, runner id), in claim order
    tenant_held = [0]
    max_tenant_held = [0]
    problems: list[str] = []

    # No wall-clock deadline (a loaded machine is slow, not wrong): a runner gives up only after this
    # many idle polls in a row during which no runner claimed anything.
    max_idle_polls_without_progress = 300
    # Halfway, the server's clock passes the stale cut-off, as a run on a loaded machine does: the runners
    # keep claiming because they heartbeat the way an agent does, not because the run was quick.
    clock_moved = threading.Event()

    def work(runner_id: str, token: str) -> None:
        held: list[str] = []
        idle_polls = 0
        claims_seen = -1
        while True:
            with lock:
                if len(claims) == job_count and not held:
                    return
                if len(claims) != claims_seen:
                    claims_seen, idle_polls = len(claims), 0
            if idle_polls > max_idle_polls_without_progress:
                problems.append(f"{runner_id} gave up after {idle_polls} idle polls without progress")
                return
            job = poll(local_api, token)
            if job is not None:
                if len(held) >= runner_concurrency:
                    problems.append(f"{runner_id} got a job while holding {held}")
                held.append(job["_id"])
                with lock:
                    claims.append((job["_id"], runner_id))
                    tenant_held[0] += 1
                    max_tenant_held[0] = max(max_tenant_held[0], tenant_held[0])
                    move_clock = len(claims) == job_count // 2 and not clock_moved.is_set()
                    if move_clock:
                        clock_moved.set()
                if move_clock:
                    local_api.advance_clock(STALE_AFTER_SECONDS + 10)
                report(local_api, token, job["_id"], "running")
            if held and (job is None or len(held) == runner_concurrency):
                # Finish the oldest job: counted out before the report, so the tally never undercounts.
                done = held.pop(0)
                with lock:
                    tenant_held[0] -= 1
                report(local_api, token, done, "completed", result={"by": runner_id})
            if job is None:
                idle_polls += 1
                if idle_polls % 10 == 0:
                    # Heartbeat as an agent does, however long the test runs: a runner silent past
                    # STALE_AFTER_SECONDS (on the server's clock) may claim nothing.
                    heartbeat(local_api, token)
                # Pacing, not a deadline: at most ~80 idle polls a minute (+ a heartbeat per 10) stays
                # inside the per-runner limit of 120 a minute however long a loaded machine makes the run.
                time.sleep(0.75)

    def work_or_report(runner_id: str, token: str) -> None:
        # An assertion inside a thread would end only that thread, leaving its jobs held: report it.
        try:
            work(runner_id, token)
        except Exception as error:  # every failure becomes a problem the test names
            with lock:
                problems.append(f"{runner_id}: {error!r}")

    threads = [threading.Thread(target=work_or_report, args=runner) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems
    assert clock_moved.is_set()
    claimed = [job_id for job_id, _ in claims]
    assert len(claimed) == len(set(claimed)) == job_count and set(claimed) == job_ids
    assert max_tenant_held[0] <= job_limit, max_tenant_held
    assert max_tenant_held[0] >= 2  # the runners really ran jobs side by side
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        result = local_api.call("GET", f"/v1/jobs{query}", token=user_jwt(local_api, org))
        listed += result.body["jobs"]
        cursor = result.body["nextCursor"]
        if not cursor:
            break
    assert {job["status"] for job in listed} == {"completed"} and len(listed) == job_count
    assert all(job["attempts"] == 1 for job in listed)
    by_runner = dict(claims)
    assert all(job["runnerId"] == by_runner[job["id"]] for job in listed)
    runners_view = local_api.call("GET", "/v1/runners", token=user_jwt(local_api, org)).body["runners"]
    assert all(runner["currentJobs"] == 0 for runner in runners_view)


def test_a_job_created_over_the_api_is_run_and_reported(local_api: LocalApi, org: str) -> None:
    set_license(local_api, org, plan="team")
    scanner = create_runner(local_api, org, "scanner", ["linux", "x64"])
    runner_id, token = scanner["_id"], scanner["token"]
    heartbeat(local_api, token)
    created = create_job(local_api, org, labels=["linux"], payload={"paths": ["infra/"]})
    assert created["status"] == "queued"
    job = poll(local_api, token)
    assert job is not None and job["_id"] == created["id"] and job["payload"] == {"paths": ["infra/"]}
    assert get_job(local_api, org, created["id"])["status"] == "assigned"
    assert report(local_api, token, job["_id"], "running")["status"] == "running"
    assert report(local_api, token, job["_id"], "completed", result={"findings": 0}) == {
        "jobId": created["id"],
        "status": "completed",
        "cancelRequested": False,
    }
    done = get_job(local_api, org, created["id"])
    assert done["status"] == "completed" and done["result"] == {"findings": 0} and done["runnerId"] == runner_id
    runner = local_api.call("GET", f"/api/runners/{runner_id}", token=user_jwt(local_api, org)).body["data"]
    assert runner["jobsCompleted"] == 1 and runner["currentJobs"] == 0


def test_a_lost_runners_job_is_recovered_by_the_sweeper(local_api: LocalApi, org: str) -> None:
    set_license(local_api, org, plan="team")
    lost_token = create_runner(local_api, org, "lost", ["linux"])["token"]
    rescuer = create_runner(local_api, org, "rescuer", ["linux"])
    rescuer_id, rescuer_token = rescuer["_id"], rescuer["token"]
    heartbeat(local_api, lost_token)
    created = create_job(local_api, org, labels=["linux"])
    job = poll(local_api, lost_token)
    assert job is not None and job["_id"] == created["id"]
    report(local_api, lost_token, job["_id"], "running")
    local_api.advance_clock(STALE_AFTER_SECONDS + 15)
    heartbeat(local_api, rescuer_token)
    summary = local_api.run_schedule("SweeperFunction")
    # Other tests' runners on this shared server may be swept too: at least ours.
    assert summary["runnersMarkedOffline"] >= 1 and summary["jobsRequeued"] >= 1 and summary["errors"] == 0, summary
    requeued = get_job(local_api, org, created["id"])
    assert requeued["status"] == "queued" and requeued["attempts"] == 1
    rescued = poll(local_api, rescuer_token)
    assert rescued is not None and rescued["_id"] == created["id"] and rescued["attempts"] == 2
    report(local_api, rescuer_token, created["id"], "completed")
    done = get_job(local_api, org, created["id"])
    assert done["status"] == "completed" and done["runnerId"] == rescuer_id
