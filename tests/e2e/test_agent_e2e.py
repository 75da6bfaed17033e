"""The reference agent end to end, all real processes: `python -m local` serves the API, `hangar-agent
register` and `hangar-agent run --exec <script>` run as subprocesses, and jobs are created, cancelled and
read over HTTP. Proves the whole product: a registered agent runs jobs and reports results and failures,
a lost runner's job is recovered by the sweeper and finished by another agent, a cancelled job's process
is killed, a rate-limited agent backs off quietly and keeps working, and SIGTERM is a clean stop that leaves
the runner offline.

The servers here are dedicated (not the session `local_api`): they tell runners to heartbeat every 2 s and
to poll every 1 s (template parameters, 30 s and 10 s by default), so that an idle agent picks up a job at
once and a surviving agent heartbeats soon after a test moves the clock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agents import (
    AGENT_COMMAND,
    FAST_INTERVALS,
    HEARTBEAT_INTERVAL_SECONDS,
    AgentProcess,
    Registered,
    agent_env,
    agent_job,
    process_alive,
    register,
    wait_for,
    wait_for_jobs,
)
from http_builders import get_job, set_license, user_jwt

from local import REPO_ROOT
from local.testing import LocalApi, start_local_api, unique_org

STALE_AFTER_SECONDS = 90  # template.yaml StaleAfterSeconds default
TERMINAL = ("completed", "failed", "cancelled", "expired")


# -- servers -----------------------------------------------------------------------------------------


# The rate-limited server: the per-runner WAF rule allows 6 requests in a trailing 6 s window and answers
# Retry-After: 3, where the agent's normal pace is 1.5 requests a second. WAF counts refused requests too;
# an agent that honours Retry-After retries each kind of call (heartbeat, poll, status) at most once per
# 3 s, so its refused retries alone stay within the limit, the window drains and it gets through again.
# An agent that retried at once would never get through.
TINY_RUNNER_LIMIT = 6
TINY_WINDOW_SECONDS = 6
TINY_RETRY_AFTER_SECONDS = 3


@pytest.fixture(scope="module")
def tiny_limit_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """local/ on a copy of template.yaml whose runner-routes-per-runner rule is tiny (see above)."""
    directory = tmp_path_factory.mktemp("tiny-runner-limit")
    text = (REPO_ROOT / "template.yaml").read_text()
    rule_start = text.index("- Name: runner-routes-per-runner")
    rule_end = text.index("- Name: register-per-ip")
    rule = text[rule_start:rule_end]
    limit = "Limit: 120\n              EvaluationWindowSec: 60\n"
    retry_after = "{Name: Retry-After, Value: '60'}"
    assert rule.count(limit) == 1 and rule.count(retry_after) == 1, "the runner WAF rule changed: update this fixture"
    tiny_limit = f"Limit: {TINY_RUNNER_LIMIT}\n              EvaluationWindowSec: {TINY_WINDOW_SECONDS}\n"
    tiny_retry_after = f"{{Name: Retry-After, Value: '{TINY_RETRY_AFTER_SECONDS}'}}"
    rule = rule.replace(limit, tiny_limit).replace(retry_after, tiny_retry_after)
    (directory / "template.yaml").write_text(text[:rule_start] + rule + text[rule_end:])
    for code in ("functions", "layers"):  # CodeUri is relative to the template
        (directory / code).symlink_to(REPO_ROOT / code, target_is_directory=True)
    api = start_local_api(extra_env=FAST_INTERVALS, args=["--template", str(directory / "template.yaml")], timeout=60)
    try:
        yield api
    finally:
        api.stop()


# -- agents ------------------------------------------------------------------------------------------


# -- jobs and runners over HTTP ------------------------------------------------------------------------


def get_runner(api: LocalApi, org: str, runner_id: str) -> dict[str, Any]:
    result = api.call("GET", f"/api/runners/{runner_id}", token=user_jwt(api, org))
    assert result.status == 200, result.body
    runner: dict[str, Any] = result.body["data"]
    return runner


def job_pid(pid_dir: Path, job_id: str, attempt: int = 1, timeout: float = 15) -> tuple[int, int]:
    """(pid, pgid) of the job script once it has started."""
    record = pid_dir / f"{job_id}.{attempt}.pid"
    wait_for(f"job {job_id} attempt {attempt} to start", record.exists, timeout)
    pid, pgid = (int(part) for part in record.read_text().split())
    return pid, pgid


def log_events(log: str, event: str) -> list[str]:
    return [line for line in log.splitlines() if f" event={event}" in line]


def assert_clean_log(agent: AgentProcess, token: str) -> None:
    """No secret in the log, one event per line, nothing at level=error."""
    log = agent.log()
    assert token not in log and "hgr_" not in log and "hge_" not in log
    assert all(re.match(r"^\S+Z level=(debug|info|warning|error) event=\w+", line) for line in log.splitlines()), log
    assert "level=error" not in log, log


def runner_token(registered: Registered) -> str:
    token: str = json.loads(registered.config.read_text())["token"]
    return token


# -- tests -------------------------------------------------------------------------------------------


def test_a_registered_agent_runs_jobs_and_reports_results_and_failures(
    fast_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess]
) -> None:
    api, org = fast_api, unique_org("agent")
    set_license(api, org, plan="team")  # two jobs at once
    registered = register(api, org, tmp_path, "builder-01", labels=("linux", "x64"), concurrency=2)
    assert stat.S_IMODE(registered.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(registered.config.parent.stat().st_mode) == 0o700
    status = subprocess.run(
        [*AGENT_COMMAND, "status"], env=agent_env(registered), capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0 and registered.runner_id in status.stdout and api.url in status.stdout
    assert runner_token(registered) not in status.stdout + status.stderr

    agent = agents(registered)
    wait_for(
        "the runner to come online",
        lambda: get_runner(api, org, registered.runner_id)["status"] == "online",
        20,
        agent.log,
    )
    runner = get_runner(api, org, registered.runner_id)
    assert runner["labels"] == ["linux", "x64"] and runner["configuredConcurrency"] == 2
    assert runner["version"] == "0.1.0" and runner["systemInfo"]["cpu"] >= 1

    completed_ids = [agent_job(api, org, {"echo": index}) for index in range(3)]
    failing_id = agent_job(api, org, {"exit": 3})
    too_large_id = agent_job(api, org, {"padding": 70 * 1024})  # results are limited to 64 KiB
    jobs = wait_for_jobs(api, org, [*completed_ids, failing_id, too_large_id], TERMINAL, 30, agent)

    for index, job in enumerate(jobs[:3]):
        assert job["status"] == "completed", job
        assert job["result"] == {"jobId": job["id"], "echo": index, "attempt": 1, "agent": "builder-01"}
        assert job["runnerId"] == registered.runner_id and job["error"] is None
    failed = jobs[3]
    assert failed["status"] == "failed" and failed["result"] is None, failed
    assert failed["error"] == {
        "code": "job_failed",
        "message": f"exit status 3: job {failing_id} attempt 1\nfailing on purpose with 3",
    }
    # The server refuses a result over 64 KiB (413): the agent reports the job failed instead.
    too_large = jobs[4]
    assert too_large["status"] == "failed" and too_large["result"] is None, too_large
    assert too_large["error"]["message"].startswith("result rejected by server: payload_too_large: result is ")
    runner = get_runner(api, org, registered.runner_id)
    assert runner["jobsCompleted"] == 3 and runner["currentJobs"] == 0

    assert agent.terminate() == 0
    log = agent.log()
    assert len(log_events(log, "job_completed")) == 4 and len(log_events(log, "job_failed")) == 1
    assert len(log_events(log, "status_report_rejected")) == 1
    assert_clean_log(agent, runner_token(registered))


@pytest.mark.slow
def test_a_lost_runners_job_is_requeued_by_the_sweeper_and_finished_by_another_agent(
    fast_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess], pid_dir: Path
) -> None:
    api, org = fast_api, unique_org("lost")
    set_license(api, org, plan="team")  # two runners
    first, second = agents(register(api, org, tmp_path, "first")), agents(register(api, org, tmp_path, "second"))
    by_runner = {agent.registered.runner_id: agent for agent in (first, second)}

    job_id = agent_job(api, org, {"sleep": 120, "echo": "survives"})
    running = wait_for_jobs(api, org, [job_id], ("running",), 20, first, second)[0]
    lost = by_runner[running["runnerId"]]
    survivor = second if lost is first else first
    _, lost_job_group = job_pid(pid_dir, job_id)

    lost.kill()  # kill -9: no report, no more heartbeats
    os.killpg(lost_job_group, signal.SIGKILL)  # the machine is gone, its job with it
    now = api.advance_clock(STALE_AFTER_SECONDS + 10)

    # The survivor must look alive at the new time too: wait for its next heartbeat before sweeping.
    def survivor_heartbeat_after_advance() -> bool:
        beat = get_runner(api, org, survivor.registered.runner_id)["lastHeartbeat"]
        return beat is not None and datetime.fromisoformat(beat).timestamp() >= now

    wait_for("the survivor's heartbeat", survivor_heartbeat_after_advance, HEARTBEAT_INTERVAL_SECONDS * 5, survivor.log)
    summary = api.run_schedule("SweeperFunction")
    assert summary["runnersMarkedOffline"] >= 1 and summary["jobsRequeued"] >= 1 and summary["errors"] == 0, summary
    assert get_runner(api, org, lost.registered.runner_id)["status"] == "offline"
    assert get_runner(api, org, survivor.registered.runner_id)["status"] != "offline"

    done = wait_for_jobs(api, org, [job_id], TERMINAL, 20, survivor)[0]
    assert done["status"] == "completed", done
    assert done["runnerId"] == survivor.registered.runner_id and done["attempts"] == 2
    assert done["result"] == {"jobId": job_id, "echo": "survives", "attempt": 2, "agent": survivor.name}
    assert survivor.terminate() == 0
    assert_clean_log(survivor, runner_token(survivor.registered))


def test_a_job_cancelled_over_the_api_is_killed_by_the_agent(
    fast_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess], pid_dir: Path
) -> None:
    api, org = fast_api, unique_org("cancel")
    registered = register(api, org, tmp_path, "canceller")  # free plan: one runner, one job at a time
    agent = agents(registered)
    job_id = agent_job(api, org, {"sleep": 120})
    wait_for_jobs(api, org, [job_id], ("running",), 20, agent)
    pid, _ = job_pid(pid_dir, job_id)
    assert process_alive(pid)

    result = api.call("POST", f"/v1/jobs/{job_id}/cancel", token=user_jwt(api, org))
    assert result.status == 200 and result.body["status"] == "cancelled", result.body
    # The agent hears it in its next heartbeat (cancelledJobs) and kills the process group.
    kill_deadline = HEARTBEAT_INTERVAL_SECONDS * 3 + 5
    wait_for(f"job process {pid} to be killed", lambda: not process_alive(pid), kill_deadline, agent.log)
    wait_for("the agent to report the cancelled job", lambda: log_events(agent.log(), "job_failed"), 10, agent.log)
    (failed_line,) = log_events(agent.log(), "job_failed")
    assert f"job={job_id}" in failed_line and "error=cancelled" in failed_line
    assert log_events(agent.log(), "job_cancel_requested")
    job = get_job(api, org, job_id)
    assert job["status"] == "cancelled" and job["cancelRequested"] is True and job["result"] is None, job

    # The slot is free on both sides: the next job runs at once (free plan: one job at a time).
    next_id = agent_job(api, org, {"echo": "after cancel"})
    done = wait_for_jobs(api, org, [next_id], TERMINAL, 20, agent)[0]
    assert done["status"] == "completed" and done["result"]["echo"] == "after cancel", done
    assert get_runner(api, org, registered.runner_id)["currentJobs"] == 0
    assert agent.terminate() == 0
    assert_clean_log(agent, runner_token(registered))


@pytest.mark.slow
def test_sigterm_lets_a_short_job_finish_reports_a_long_one_and_exits_0(
    fast_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess], pid_dir: Path
) -> None:
    api, org = fast_api, unique_org("sigterm")
    set_license(api, org, plan="team")  # two jobs at once
    grace = 4.0
    agent = agents(register(api, org, tmp_path, "stopper", concurrency=2), grace=grace)
    short_id = agent_job(api, org, {"sleep": 2, "echo": "short"})
    long_id = agent_job(api, org, {"sleep": 120})
    wait_for_jobs(api, org, [short_id, long_id], ("running",), 20, agent)
    long_pid, _ = job_pid(pid_dir, long_id)
    job_pid(pid_dir, short_id)

    signalled = time.monotonic()
    agent.process.send_signal(signal.SIGTERM)
    late_id = agent_job(api, org, {"echo": "too late"})  # polling has stopped: this one stays queued
    exit_code = agent.process.wait(grace + 30)
    stopped_after = time.monotonic() - signalled

    assert exit_code == 0, agent.log()
    assert grace - 0.5 <= stopped_after < grace + 15, stopped_after  # waited for the grace, then not long
    short, long, late = (get_job(api, org, job_id) for job_id in (short_id, long_id, late_id))
    assert short["status"] == "completed" and short["result"]["echo"] == "short", short
    assert long["status"] == "failed" and long["error"] == {"code": "job_failed", "message": "agent shutdown"}, long
    assert late["status"] == "queued" and late["runnerId"] is None, late
    assert not process_alive(long_pid)
    # It said so on its way out: offline now, with no slot held, rather than busy until it goes stale.
    runner = get_runner(api, org, agent.registered.runner_id)
    assert runner["status"] == "offline", runner
    assert runner["currentJobs"] == 0, runner
    log = agent.log()
    assert log_events(log, "shutdown_requested") and log_events(log, "agent_stopped")
    assert log_events(log, "runner_offline")
    (killed,) = log_events(log, "job_killed")
    assert f"job={long_id}" in killed
    assert_clean_log(agent, runner_token(agent.registered))


@pytest.mark.slow
def test_a_rate_limited_agent_backs_off_quietly_and_keeps_working(
    tiny_limit_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess]
) -> None:
    api, org = tiny_limit_api, unique_org("limited")
    agent = agents(register(api, org, tmp_path, "limited"))
    mark = api.output_mark()
    started = time.monotonic()

    def refusals() -> int:
        return len(re.findall(r"POST /api/runners/(?:heartbeat|jobs|jobs/status) -> 429", api.output(mark)))

    wait_for("the runner limit to bite", refusals, 20, agent.log)
    # Jobs created while the agent is being refused still run; so does one created later.
    first = agent_job(api, org, {"echo": 1})
    wait_for_jobs(api, org, [first], TERMINAL, 40, agent)
    second = agent_job(api, org, {"echo": 2})
    jobs = wait_for_jobs(api, org, [first, second], TERMINAL, 40, agent)
    elapsed = time.monotonic() - started
    assert [job["status"] for job in jobs] == ["completed", "completed"], jobs
    assert [job["result"]["echo"] for job in jobs] == [1, 2]
    assert agent.terminate() == 0

    log = agent.log()
    limited, ended = log_events(log, "rate_limited"), log_events(log, "rate_limit_ended")
    refused = refusals()
    assert limited, log
    assert all(f"retry_after={TINY_RETRY_AFTER_SECONDS}" in line for line in limited), limited
    # Retry-After is honoured: each kind of call (heartbeat, poll, status) is retried at most once per
    # Retry-After, so the server refused only a handful of calls...
    kinds = 3
    assert refused <= kinds * (elapsed / TINY_RETRY_AFTER_SECONDS + 1), (refused, elapsed)
    # ...and the log has one line when a back-off starts and one when it ends, not one per refusal.
    assert len(limited) <= refused and len(ended) <= len(limited), log
    assert len(limited) + len(ended) <= 2 * kinds * (elapsed / TINY_WINDOW_SECONDS + 1), log
    warnings = [line for line in log.splitlines() if "level=warning" in line]
    assert warnings == limited, warnings  # no other complaint: no error, no api_unavailable, no dropped report
    assert_clean_log(agent, runner_token(agent.registered))
