"""The reference agent as real processes, for the end-to-end tests that run it (test_agent_*_e2e.py):
`hangar-agent register` against a `python -m local`, `hangar-agent run --exec <command>` as a subprocess
with its log in a file, and waits on what the API shows. The fixtures that start them (`fast_api`,
`pid_dir`, `agents`) are in conftest.py; the records they act on come from http_builders.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from http_builders import create_job, get_job

from local.testing import LocalApi

T = TypeVar("T")

HEARTBEAT_INTERVAL_SECONDS = 2
POLL_INTERVAL_SECONDS = 1
# Template parameters HeartbeatIntervalSeconds / PollIntervalSeconds, overridden as local/ allows.
FAST_INTERVALS = {
    "HANGAR_PARAM_HeartbeatIntervalSeconds": str(HEARTBEAT_INTERVAL_SECONDS),
    "HANGAR_PARAM_PollIntervalSeconds": str(POLL_INTERVAL_SECONDS),
}

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


def agent_job(api: LocalApi, org: str, payload: dict[str, Any], labels: tuple[str, ...] = ("linux",)) -> str:
    """The id of a new job for the agents here: JOB_SCRIPT reads what to do from its payload."""
    job_id: str = create_job(api, org, labels=list(labels), payload=payload)["id"]
    return job_id


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


def process_cmdline(pid: int) -> str:
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
