"""The reference agent end to end, all real processes: `python -m local` serves the API, `hangar-agent
register` and `hangar-agent run --exec <script>` run as subprocesses, and jobs are created, cancelled and
read over HTTP. Proves the whole product: a registered agent runs jobs and reports results and failures,
a lost runner's job is recovered by the sweeper and finished by another agent, a cancelled job's process
is killed, a rate-limited agent backs off quietly and keeps working, and SIGTERM is a clean stop.

The servers here are dedicated (not the session `local_api`): they tell runners to heartbeat every 2 s and
to poll every 1 s (template parameters, 30 s and 10 s by default), so that an idle agent picks up a job at
once and a surviving agent heartbeats soon after a test moves the clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from local import REPO_ROOT
from local.testing import LocalApi, start_local_api, unique_org

T = TypeVar("T")

HEARTBEAT_INTERVAL_SECONDS = 2
POLL_INTERVAL_SECONDS = 1
# Template parameters HeartbeatIntervalSeconds / PollIntervalSeconds, overridden as local/ allows.
FAST_INTERVALS = {
    "HANGAR_PARAM_HeartbeatIntervalSeconds": str(HEARTBEAT_INTERVAL_SECONDS),
    "HANGAR_PARAM_PollIntervalSeconds": str(POLL_INTERVAL_SECONDS),
}
STALE_AFTER_SECONDS = 90  # template.yaml StaleAfterSeconds default
USER_SCOPES = "runners:read runners:manage jobs:read jobs:manage"
TERMINAL = ("completed", "failed", "cancelled", "expired")

# The console script installed with `pip install -e ./agent`; `python -m hangar_agent` otherwise.
_CONSOLE_SCRIPT = Path(sys.executable).parent / "hangar-agent"
AGENT_COMMAND = [str(_CONSOLE_SCRIPT)] if _CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "hangar_agent"]

# The job COMMAND: the job JSON on stdin, HANGAR_JOB_ID in the environment (agent/README.md). It records
# "<pid> <pgid>" in <pid dir>/<job id>.<attempt>.pid, then does what the payload says: sleep (first
# attempt only; `retrySleep` on later ones), exit non-zero, or print a JSON result (`padding` makes it big).
JOB_SCRIPT = """\
import json, os, sys, time

job = json.load(sys.stdin)
payload = job.get("payload") or {}
attempt = job["attempts"]
record = os.path.join(sys.argv[1], "%s.%s.pid" % (job["_id"], attempt))
with open(record + ".tmp", "w") as fh:
    fh.write("%d %d" % (os.getpid(), os.getpgid(0)))
os.replace(record + ".tmp", record)
print("job %s attempt %s" % (os.environ["HANGAR_JOB_ID"], attempt), file=sys.stderr)
time.sleep(payload.get("sleep", 0) if attempt == 1 else payload.get("retrySleep", 0))
if payload.get("exit"):
    print("failing on purpose with %d" % payload["exit"], file=sys.stderr)
    sys.exit(payload["exit"])
result = {"jobId": os.environ["HANGAR_JOB_ID"], "echo": payload.get("echo"), "attempt": attempt,
          "agent": os.environ.get("E2E_AGENT_NAME")}
if payload.get("padding"):
    result["padding"] = "x" * payload["padding"]
print(json.dumps(result))
"""
JOB_SCRIPT_NAME = "e2e_job.py"


# -- servers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_api() -> Iterator[LocalApi]:
    """local/ whose heartbeat and poll intervals are 2 s and 1 s (the defaults are 30 s and 10 s)."""
    api = start_local_api(extra_env=FAST_INTERVALS, timeout=60)
    try:
        yield api
    finally:
        api.stop()


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


@dataclass
class Registered:
    name: str
    runner_id: str
    config: Path


class AgentProcess:
    """One `hangar-agent run` subprocess; its stderr (the agent's log) goes to a file."""

    def __init__(self, registered: Registered, command: str, log_path: Path, grace: float) -> None:
        self.registered = registered
        self.log_path = log_path
        self._log_file: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            [*AGENT_COMMAND, "run", "--exec", command, "--grace", str(grace)],
            env=agent_env(registered),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
            start_new_session=True,  # signals reach the agent only when a test sends them
        )

    @property
    def name(self) -> str:
        return self.registered.name

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL (kill -9): the agent gets no chance to report anything."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        self.kill()
        self._log_file.close()


@pytest.fixture
def pid_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the job script records its pids; at teardown any job process still alive is killed."""
    directory = tmp_path / "pids"
    directory.mkdir()
    try:
        yield directory
    finally:
        for record in directory.glob("*.pid"):
            pid, pgid = (int(part) for part in record.read_text().split())
            if process_alive(pid) and JOB_SCRIPT_NAME in _cmdline(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def agents(tmp_path: Path, pid_dir: Path) -> Iterator[Callable[..., AgentProcess]]:
    """start(registered, grace=5) runs `hangar-agent run --exec <job script>`. Whatever happens, every agent
    is killed at the end of the test (before pid_dir's teardown kills the job processes they leave)."""
    script = tmp_path / JOB_SCRIPT_NAME
    script.write_text(JOB_SCRIPT)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(pid_dir))}"
    started: list[AgentProcess] = []

    def start(registered: Registered, grace: float = 5.0) -> AgentProcess:
        agent = AgentProcess(registered, command, tmp_path / f"{registered.name}.log", grace)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.close()


def agent_env(registered: Registered) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANGAR_AGENT_")}
    env["HANGAR_AGENT_CONFIG"] = str(registered.config)
    env["E2E_AGENT_NAME"] = registered.name  # inherited by the job script: which agent ran a job
    return env


def register(
    api: LocalApi, org: str, workdir: Path, name: str, labels: tuple[str, ...] = ("linux",), concurrency: int = 1
) -> Registered:
    """An enrollment token over HTTP, then `hangar-agent register` with it (config in `workdir/name/`)."""
    created = api.call("POST", "/v1/runners/enrollment-tokens", token=api.jwt(org, "runners:manage"), json={})
    assert created.status == 201, created.body
    enrollment = created.body["token"]
    config = workdir / name / "agent.json"
    registered = Registered(name=name, runner_id="", config=config)
    options = ["--api-url", api.url, "--token", enrollment, "--name", name, "--concurrency", str(concurrency)]
    options += [arg for label in labels for arg in ("--label", label)]
    result = subprocess.run(
        [*AGENT_COMMAND, "register", *options],
        env=agent_env(registered),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    saved = json.loads(config.read_text())
    registered.runner_id = saved["runnerId"]
    assert saved["token"].startswith("hgr_") and saved["token"] not in result.stdout + result.stderr
    assert enrollment not in result.stdout + result.stderr
    assert f"Runner id:    {registered.runner_id}" in result.stdout
    return registered


def set_plan(api: LocalApi, org: str, plan: str) -> None:
    result = api.call(
        "PUT", f"/v1/orgs/{org}/license", token=api.jwt("hangar-operators", "admin:licenses"), json={"plan": plan}
    )
    assert result.status == 200, result.body


# -- jobs and runners over HTTP ------------------------------------------------------------------------


def create_job(api: LocalApi, org: str, payload: dict[str, Any], labels: tuple[str, ...] = ("linux",)) -> str:
    body = {"type": "scan", "repositoryName": "org/terraform-infra", "branch": "main", "labels": list(labels)}
    result = api.call("POST", "/v1/jobs", token=api.jwt(org, USER_SCOPES), json={**body, "payload": payload})
    assert result.status == 201, result.body
    job_id: str = result.body["id"]
    return job_id


def get_job(api: LocalApi, org: str, job_id: str) -> dict[str, Any]:
    result = api.call("GET", f"/v1/jobs/{job_id}", token=api.jwt(org, USER_SCOPES))
    assert result.status == 200, result.body
    job: dict[str, Any] = result.body
    return job


def get_runner(api: LocalApi, org: str, runner_id: str) -> dict[str, Any]:
    result = api.call("GET", f"/api/runners/{runner_id}", token=api.jwt(org, USER_SCOPES))
    assert result.status == 200, result.body
    runner: dict[str, Any] = result.body["data"]
    return runner


def wait_for(what: str, check: Callable[[], T | None], timeout: float, diagnostics: Callable[[], str] = str) -> T:
    """Poll `check` until it returns something truthy (and return that), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{diagnostics()}")
        time.sleep(0.1)


def wait_for_jobs(
    api: LocalApi, org: str, job_ids: list[str], statuses: tuple[str, ...], timeout: float, *logs: AgentProcess
) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        jobs = [get_job(api, org, job_id) for job_id in job_ids]
        return jobs if all(job["status"] in statuses for job in jobs) else None

    def diagnostics() -> str:
        states = {job_id: get_job(api, org, job_id)["status"] for job_id in job_ids}
        return f"jobs: {states}\n" + "\n".join(f"--- {agent.name} log:\n{agent.log()}" for agent in logs)

    return wait_for(f"jobs {job_ids} to be {statuses}", check, timeout, diagnostics)


def job_pid(pid_dir: Path, job_id: str, attempt: int = 1, timeout: float = 15) -> tuple[int, int]:
    """(pid, pgid) of the job script once it has started."""
    record = pid_dir / f"{job_id}.{attempt}.pid"
    wait_for(f"job {job_id} attempt {attempt} to start", record.exists, timeout)
    pid, pgid = (int(part) for part in record.read_text().split())
    return pid, pgid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (in containers whose PID 1 does not reap orphans, a killed
    orphan can stay a zombie forever)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


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
    set_plan(api, org, "team")  # two jobs at once
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

    completed_ids = [create_job(api, org, {"echo": index}) for index in range(3)]
    failing_id = create_job(api, org, {"exit": 3})
    too_large_id = create_job(api, org, {"padding": 70 * 1024})  # results are limited to 64 KiB
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
    set_plan(api, org, "team")  # two runners
    first, second = agents(register(api, org, tmp_path, "first")), agents(register(api, org, tmp_path, "second"))
    by_runner = {agent.registered.runner_id: agent for agent in (first, second)}

    job_id = create_job(api, org, {"sleep": 120, "echo": "survives"})
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
    job_id = create_job(api, org, {"sleep": 120})
    wait_for_jobs(api, org, [job_id], ("running",), 20, agent)
    pid, _ = job_pid(pid_dir, job_id)
    assert process_alive(pid)

    result = api.call("POST", f"/v1/jobs/{job_id}/cancel", token=api.jwt(org, USER_SCOPES))
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
    next_id = create_job(api, org, {"echo": "after cancel"})
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
    set_plan(api, org, "team")  # two jobs at once
    grace = 4.0
    agent = agents(register(api, org, tmp_path, "stopper", concurrency=2), grace=grace)
    short_id = create_job(api, org, {"sleep": 2, "echo": "short"})
    long_id = create_job(api, org, {"sleep": 120})
    wait_for_jobs(api, org, [short_id, long_id], ("running",), 20, agent)
    long_pid, _ = job_pid(pid_dir, long_id)
    job_pid(pid_dir, short_id)

    signalled = time.monotonic()
    agent.process.send_signal(signal.SIGTERM)
    late_id = create_job(api, org, {"echo": "too late"})  # polling has stopped: this one stays queued
    exit_code = agent.process.wait(grace + 30)
    stopped_after = time.monotonic() - signalled

    assert exit_code == 0, agent.log()
    assert grace - 0.5 <= stopped_after < grace + 15, stopped_after  # waited for the grace, then not long
    short, long, late = (get_job(api, org, job_id) for job_id in (short_id, long_id, late_id))
    assert short["status"] == "completed" and short["result"]["echo"] == "short", short
    assert long["status"] == "failed" and long["error"] == {"code": "job_failed", "message": "agent shutdown"}, long
    assert late["status"] == "queued" and late["runnerId"] is None, late
    assert not process_alive(long_pid)
    log = agent.log()
    assert log_events(log, "shutdown_requested") and log_events(log, "agent_stopped")
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
    first = create_job(api, org, {"echo": 1})
    wait_for_jobs(api, org, [first], TERMINAL, 40, agent)
    second = create_job(api, org, {"echo": 2})
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
