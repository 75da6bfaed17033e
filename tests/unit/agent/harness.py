"""Running the real agent CLI (``python -m hangar_agent``) in a subprocess against the fake Hangar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from fake_hangar import FakeHangar

AGENT_DIR = Path(__file__).resolve().parents[3] / "agent"
AGENT_VERSION = "0.1.0"

JOB_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    job = json.load(sys.stdin)
    p = job.get("payload") or {}
    mode = p.get("mode", "echo")
    if p.get("sleep"):
        time.sleep(p["sleep"])
    if mode == "echo":
        print(json.dumps({"jobId": os.environ["HANGAR_JOB_ID"], "type": job["type"], "payload": p}))
    elif mode == "fail":
        print("something broke", file=sys.stderr)
        sys.exit(3)
    elif mode == "text":
        print("hello, not json")
    """
)


def agent_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HANGAR_")}
    env["PYTHONPATH"] = str(AGENT_DIR)
    env["HANGAR_AGENT_CONFIG"] = str(config)
    env["NO_PROXY"] = "*"
    env["no_proxy"] = "*"
    env["PYTHONFAULTHANDLER"] = "1"  # a hung agent killed with SIGABRT writes every thread's stack to its log
    env.update(extra)
    return env


def cli(
    args: list[str], config: Path, timeout: float = 15, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hangar_agent", *args],
        env=agent_env(config, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def write_config(path: Path, server: FakeHangar, concurrency: int = 1, token: str | None = None) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiUrl": server.url,
                "runnerId": server.runner_id,
                "token": token or server.runner_token,
                "tokenPrefix": server.token_prefix,
                "name": "test-runner",
                "labels": ["linux"],
                "configuredConcurrency": concurrency,
            }
        )
    )
    path.chmod(0o600)
    return path


@dataclass
class AgentProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate_and_wait(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler: the stacks of the threads it hung in
            self.proc.wait(timeout=10)
            raise AssertionError(f"the agent did not stop within {timeout:g} s of SIGTERM:\n{self.log()}") from None


def process_gone(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def written_pid(server: FakeHangar, pid_file: Path) -> int:
    """The pid a job's command wrote to `pid_file`, once it is there."""
    assert server.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != ""), f"no pid in {pid_file}"
    return int(pid_file.read_text())


def gone_within(pid: int, seconds: float = 3) -> bool:
    """Whether the process ends within `seconds`: a bound on waiting, not a timing assertion."""
    deadline = time.monotonic() + seconds
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process_gone(pid)
