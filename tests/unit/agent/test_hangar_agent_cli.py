"""End-to-end tests of the reference runner agent against an in-process fake Hangar server.

The agent is always run through its real CLI (``python -m hangar_agent``) in a subprocess.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

AGENT_DIR = Path(__file__).resolve().parents[3] / "agent"
AGENT_VERSION = "0.1.0"


# --------------------------------------------------------------------------- fake server


@dataclass
class FakeJob:
    job: dict[str, Any]
    status: str = "queued"
    cancelled: bool = False
    cancel_before_running: bool = False
    requeued: bool = False  # the sweeper gave it back to the queue: final reports are 404 (Hangar's answer)
    result: Any = None
    error: str | None = None


@dataclass
class Request:
    path: str
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class FakeHangar:
    heartbeat_interval: float = 1
    poll_interval: float = 1
    enrollment_token: str = "hge_" + "e" * 24
    runner_token: str = field(default_factory=lambda: "hgr_" + secrets.token_hex(20))
    runner_id: str = "runner_abc123"
    poll_429: int = 0
    poll_503: int = 0
    retry_after: str = "1"
    heartbeat_401: bool = False
    queue: list[str] = field(default_factory=list)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    @property
    def token_prefix(self) -> str:
        return self.runner_token[:8]

    # -- test-side helpers
    def enqueue(self, payload: Any = None, **extra: Any) -> str:
        job_id = "job_" + secrets.token_hex(4)
        job = {
            "_id": job_id,
            "type": "build",
            "repositoryConfig": {"provider": "github"},
            "repositoryName": "acme/widgets",
            "branch": "main",
            "targetId": "target_1",
            "labels": ["linux"],
            "payload": payload,
            "timeoutSeconds": 60,
            "attempts": 1,
        }
        job.update(extra)
        with self.cond:
            self.jobs[job_id] = FakeJob(job=job)
            self.queue.append(job_id)
            self.cond.notify_all()
        return job_id

    def cancel(self, job_id: str) -> None:
        with self.cond:
            self.jobs[job_id].cancelled = True

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, 0.1))
        return True

    def reports(self, job_id: str) -> list[dict[str, Any]]:
        with self.cond:
            return [r.body for r in self.requests if r.path == "/api/runners/jobs/status" and r.body["jobId"] == job_id]

    def of(self, path: str) -> list[Request]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    # -- server-side
    def handle(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self.cond:
            self.requests.append(Request(path, body, headers, time.monotonic()))
            self.cond.notify_all()
            if path == "/v1/runners/register":
                if body.get("token") != self.enrollment_token:
                    return (
                        401,
                        {"error": {"code": "token_invalid", "message": "Enrollment token is invalid"}},
                        {},
                    )
                runner = {
                    "id": self.runner_id,
                    "name": body.get("name", "runner-1"),
                    "labels": body.get("labels", []),
                    "configuredConcurrency": body.get("configuredConcurrency", 1),
                    "tokenPrefix": self.token_prefix,
                    "status": "offline",
                }
                return (
                    201,
                    {
                        "runner": runner,
                        "token": self.runner_token,
                        "heartbeatIntervalSeconds": self.heartbeat_interval,
                        "pollIntervalSeconds": self.poll_interval,
                    },
                    {},
                )
            if headers.get("x-runner-token") != self.runner_token:
                return 401, {"error": {"code": "unauthorized", "message": "bad runner token"}}, {}
            if path == "/api/runners/heartbeat":
                if self.heartbeat_401:
                    return 401, {"error": {"code": "unauthorized", "message": "token regenerated"}}, {}
                cancelled = [jid for jid, j in self.jobs.items() if j.cancelled and j.status in ("assigned", "running")]
                data = {"heartbeatIntervalSeconds": self.heartbeat_interval, "cancelledJobs": cancelled}
                return 200, {"success": True, "data": data}, {}
            if path == "/api/runners/jobs":
                if self.poll_429 > 0:
                    self.poll_429 -= 1
                    err = {"error": {"code": "rate_limited", "message": "slow down"}}
                    return 429, err, {"Retry-After": self.retry_after}
                if self.poll_503 > 0:
                    self.poll_503 -= 1
                    return 503, {"error": {"code": "unavailable", "message": "maintenance"}}, {}
                job = None
                if self.queue:
                    fake = self.jobs[self.queue.pop(0)]
                    fake.status = "assigned"
                    if fake.cancel_before_running:
                        fake.cancelled = True
                    job = fake.job
                return (
                    200,
                    {"success": True, "data": {"job": job, "pollIntervalSeconds": self.poll_interval}},
                    {},
                )
            if path == "/api/runners/jobs/status":
                reported = self.jobs.get(body.get("jobId"))
                if reported is not None and reported.requeued and body.get("status") != "running":
                    return 404, {"error": {"code": "not_found", "message": f"Job {body['jobId']} not found"}}, {}
                if reported is None or reported.status not in ("assigned", "running"):
                    return 409, {"error": {"code": "conflict", "message": "job not assigned to runner"}}, {}
                result = body.get("result")
                if isinstance(result, dict) and (result.get("payload") or {}).get("reject"):
                    return 413, {"error": {"code": "result_too_large", "message": "result exceeds 256 KiB"}}, {}
                if not reported.cancelled:
                    reported.status = body["status"]
                    reported.result = body.get("result")
                    reported.error = body.get("error")
                elif body["status"] in ("completed", "failed"):
                    reported.status = "cancelled"
                data = {"jobId": body["jobId"], "status": reported.status}
                data["cancelRequested"] = reported.cancelled
                return 200, {"success": True, "data": data}, {}
            return 404, {"error": {"code": "not_found", "message": path}}, {}


def _make_handler(fake: FakeHangar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = fake.handle(self.path, body, headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FakeHangar]:
    fake = FakeHangar()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- agent helpers


def agent_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HANGAR_")}
    env["PYTHONPATH"] = str(AGENT_DIR)
    env["HANGAR_AGENT_CONFIG"] = str(config)
    env["NO_PROXY"] = "*"
    env["no_proxy"] = "*"
    env.update(extra)
    return env


def cli(args: list[str], config: Path, timeout: float = 15, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hangar_agent", *args],
        env=agent_env(config, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write_config(path: Path, server: FakeHangar, concurrency: int = 1) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiUrl": server.url,
                "runnerId": server.runner_id,
                "token": server.runner_token,
                "tokenPrefix": server.token_prefix,
                "name": "test-runner",
                "labels": ["linux"],
                "configuredConcurrency": concurrency,
            }
        )
    )
    path.chmod(0o600)
    return path


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


@dataclass
class AgentProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate_and_wait(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def start_agent(tmp_path: Path, server: FakeHangar) -> Iterator[Callable[..., AgentProc]]:
    started: list[AgentProc] = []
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)

    def start(*extra: str, concurrency: int = 1, exec_cmd: str | None = None, grace: float | None = None) -> AgentProc:
        config = write_config(tmp_path / f"agent{len(started)}.json", server, concurrency)
        command = exec_cmd or f"{sys.executable} {script}"
        args = [sys.executable, "-m", "hangar_agent", "run", "--exec", command, *extra]
        if grace is not None:
            args += ["--grace", str(grace)]
        log_path = tmp_path / f"agent{len(started)}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                args,
                env=agent_env(config),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        agent = AgentProc(proc, log_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(5)


def final_reports(server: FakeHangar, job_id: str) -> list[dict[str, Any]]:
    return [r for r in server.reports(job_id) if r["status"] in ("completed", "failed")]


def process_gone(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# --------------------------------------------------------------------------- register / status


def test_register_writes_private_config_and_never_prints_token(tmp_path: Path, server: FakeHangar) -> None:
    config = tmp_path / "fresh" / "hangar" / "agent.json"
    res = cli(
        [
            "register",
            "--api-url",
            server.url + "/",
            "--token",
            server.enrollment_token,
            "--name",
            "build-box",
            "--label",
            "linux",
            "--label",
            "x64",
            "--concurrency",
            "2",
        ],
        config,
    )
    assert res.returncode == 0, res.stderr
    output = res.stdout + res.stderr
    assert server.runner_token not in output
    assert server.runner_id in res.stdout
    assert server.token_prefix in res.stdout

    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    saved = json.loads(config.read_text())
    assert saved == {
        "apiUrl": server.url,
        "runnerId": server.runner_id,
        "token": server.runner_token,
        "tokenPrefix": server.token_prefix,
        "name": "build-box",
        "labels": ["linux", "x64"],
        "configuredConcurrency": 2,
    }
    (req,) = server.of("/v1/runners/register")
    assert req.body == {
        "token": server.enrollment_token,
        "name": "build-box",
        "labels": ["linux", "x64"],
        "configuredConcurrency": 2,
        "version": AGENT_VERSION,
    }
    assert not [p for p in config.parent.iterdir() if p.name != "agent.json"]  # no temp files left behind


def test_register_error_is_reported_and_no_config_written(tmp_path: Path, server: FakeHangar) -> None:
    config = tmp_path / "agent.json"
    res = cli(["register", "--api-url", server.url, "--token", "hge_wrong"], config)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == "error: token_invalid: Enrollment token is invalid"
    assert not config.exists()


def test_status_shows_registration_without_token(tmp_path: Path, server: FakeHangar) -> None:
    config = write_config(tmp_path / "agent.json", server)
    res = cli(["status", "--config", str(config)], tmp_path / "unused.json")
    assert res.returncode == 0, res.stderr
    assert server.runner_id in res.stdout
    assert server.url in res.stdout
    assert server.token_prefix in res.stdout
    assert server.runner_token not in res.stdout + res.stderr

    missing = cli(["status"], tmp_path / "nope.json")
    assert missing.returncode == 1
    assert "register" in missing.stderr


# --------------------------------------------------------------------------- run


def test_job_completes_with_script_json_result(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    job_id = server.enqueue({"answer": 42})
    agent = start_agent()
    assert server.wait_for(lambda: bool(final_reports(server, job_id))), agent.log()
    statuses = [r["status"] for r in server.reports(job_id)]
    assert statuses == ["running", "completed"]
    completed = final_reports(server, job_id)[0]
    assert completed["result"] == {"jobId": job_id, "type": "build", "payload": {"answer": 42}}

    assert server.wait_for(lambda: len(server.of("/api/runners/heartbeat")) >= 1)
    hb = server.of("/api/runners/heartbeat")[0]
    assert hb.headers["x-runner-token"] == server.runner_token
    assert hb.body["status"] in ("online", "busy")
    assert hb.body["version"] == AGENT_VERSION
    assert hb.body["configuredConcurrency"] == 1
    assert set(hb.body["systemInfo"]) == {"cpu", "memory", "disk"}
    assert hb.body["systemInfo"]["cpu"] == os.cpu_count()
    assert server.of("/api/runners/jobs")[0].body == {}

    assert agent.terminate_and_wait() == 0
    log = agent.log()
    assert server.runner_token not in log
    assert f"event=job_completed job={job_id}" in log
    for line in log.strip().splitlines():
        assert line.split(" ")[1].startswith("level="), line


def test_failing_and_non_json_scripts_run_concurrently(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    failing = server.enqueue({"mode": "fail", "sleep": 1})
    text = server.enqueue({"mode": "text", "sleep": 1})
    agent = start_agent(concurrency=2)
    both_done = lambda: bool(final_reports(server, failing) and final_reports(server, text))  # noqa: E731
    assert server.wait_for(both_done), agent.log()

    (fail_report,) = final_reports(server, failing)
    assert fail_report["status"] == "failed"
    assert fail_report["error"].startswith("exit status 3")
    assert "something broke" in fail_report["error"]
    assert "result" not in fail_report

    (text_report,) = final_reports(server, text)
    assert text_report == {"jobId": text, "status": "completed", "result": {"output": "hello, not json\n"}}

    # Both ran at the same time: each was reported running before either finished.
    with server.cond:
        order = [(r.body["jobId"], r.body["status"]) for r in server.requests if r.path.endswith("/status")]
    first_final = min(i for i, (_, s) in enumerate(order) if s != "running")
    assert {jid for jid, s in order[:first_final] if s == "running"} == {failing, text}
    assert agent.terminate_and_wait() == 0


def test_rejected_result_is_replaced_by_a_failed_report(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    job_id = server.enqueue({"reject": True})
    agent = start_agent()
    assert server.wait_for(lambda: len(final_reports(server, job_id)) == 2), agent.log()
    completed, failed = final_reports(server, job_id)
    assert completed["status"] == "completed"
    assert failed == {
        "jobId": job_id,
        "status": "failed",
        "error": "result rejected by server: result_too_large: result exceeds 256 KiB",
    }
    assert server.jobs[job_id].status == "failed"
    assert agent.terminate_and_wait() == 0


def test_a_job_requeued_meanwhile_is_dropped_after_one_404(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    """Our heartbeats stopped long enough for the sweeper to requeue the job: its report is 404, the job is
    not ours any more, and no fallback report follows (unlike a result the server refused as too large)."""
    job_id = server.enqueue({"mode": "echo"})
    server.jobs[job_id].requeued = True
    agent = start_agent()
    assert server.wait_for(lambda: bool(final_reports(server, job_id))), agent.log()
    follow_up = server.enqueue({"mode": "echo"})
    assert server.wait_for(lambda: bool(final_reports(server, follow_up))), agent.log()
    assert [r["status"] for r in server.reports(job_id)] == ["running", "completed"]
    assert agent.terminate_and_wait() == 0
    log = agent.log()
    (conflict,) = [line for line in log.splitlines() if "event=status_report_conflict" in line]
    assert f"job={job_id}" in conflict and "http=404" in conflict
    assert "status_report_rejected" not in log and "level=error" not in log


def test_cancellation_kills_process_group(
    tmp_path: Path, server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    pid_file = tmp_path / "child.pid"
    job_id = server.enqueue(None)
    agent = start_agent(exec_cmd=f"sleep 30 & echo $! > {pid_file}; wait")
    assert server.wait_for(lambda: bool(server.reports(job_id)) and pid_file.exists()), agent.log()
    assert server.wait_for(lambda: pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())
    server.cancel(job_id)
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=8), agent.log()
    (report,) = final_reports(server, job_id)
    assert report["status"] == "failed"
    assert report["error"] == "cancelled"
    assert server.jobs[job_id].status == "cancelled"
    deadline = time.monotonic() + 3
    while not process_gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(child), "the job's child process survived cancellation"
    assert agent.terminate_and_wait() == 0
    assert "event=job_cancel_requested" in agent.log()


def test_cancel_requested_on_running_report_skips_the_command(
    tmp_path: Path, server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    marker = tmp_path / "ran"
    job_id = server.enqueue(None)
    server.jobs[job_id].cancel_before_running = True
    agent = start_agent(exec_cmd=f"touch {marker}; sleep 30")
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=8), agent.log()
    assert [r["status"] for r in server.reports(job_id)] == ["running", "failed"]
    assert final_reports(server, job_id)[0]["error"] == "cancelled"
    assert agent.terminate_and_wait() == 0


def test_timeout_kills_and_reports_failed(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    job_id = server.enqueue(None, timeoutSeconds=1)
    agent = start_agent(exec_cmd="sleep 30")
    started = time.monotonic()
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=8), agent.log()
    assert time.monotonic() - started < 7
    assert final_reports(server, job_id)[0] == {"jobId": job_id, "status": "failed", "error": "timeout"}
    assert agent.terminate_and_wait() == 0


def test_rate_limit_backs_off_then_keeps_working(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    server.poll_429 = 2
    server.retry_after = "1"
    job_id = server.enqueue({"n": 1})
    agent = start_agent()
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=10), agent.log()
    assert final_reports(server, job_id)[0]["status"] == "completed"
    polls = [r.at for r in server.of("/api/runners/jobs")]
    assert len(polls) >= 3
    assert polls[1] - polls[0] >= 0.9 and polls[2] - polls[1] >= 0.9, polls
    assert agent.terminate_and_wait() == 0
    rate_lines = [line for line in agent.log().splitlines() if "rate_limit" in line]
    assert 1 <= len(rate_lines) <= 2, rate_lines


def test_server_errors_back_off_with_one_log_line(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    server.poll_503 = 2
    job_id = server.enqueue({"n": 2})
    agent = start_agent()
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=10), agent.log()
    polls = [r.at for r in server.of("/api/runners/jobs")]
    assert polls[1] - polls[0] >= 0.7 and polls[2] - polls[1] >= 1.5, polls  # 1 s then 2 s, ±20%
    assert agent.terminate_and_wait() == 0
    unavailable = [line for line in agent.log().splitlines() if "event=api_unavailable" in line]
    assert len(unavailable) == 1, unavailable


def test_sigterm_lets_running_job_finish_then_exits_zero(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    job_id = server.enqueue({"sleep": 1.5, "v": "x"})
    agent = start_agent(grace=10)
    assert server.wait_for(lambda: bool(server.reports(job_id))), agent.log()
    agent.proc.send_signal(signal.SIGTERM)
    polls_at_signal = len(server.of("/api/runners/jobs"))
    assert agent.proc.wait(timeout=10) == 0
    (report,) = final_reports(server, job_id)
    assert report["status"] == "completed"
    assert report["result"]["payload"] == {"sleep": 1.5, "v": "x"}
    # At most one poll was already in flight when the signal arrived.
    assert len(server.of("/api/runners/jobs")) <= polls_at_signal + 1
    assert "event=shutdown_requested" in agent.log()


def test_sigterm_after_grace_kills_job_and_reports_shutdown(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    job_id = server.enqueue(None)
    agent = start_agent(exec_cmd="sleep 30", grace=0.5)
    assert server.wait_for(lambda: bool(server.reports(job_id))), agent.log()
    time.sleep(0.2)
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert final_reports(server, job_id) == [{"jobId": job_id, "status": "failed", "error": "agent shutdown"}]


def test_rejected_token_exits_2(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    server.heartbeat_401 = True
    agent = start_agent()
    assert agent.proc.wait(timeout=10) == 2
    log = agent.log()
    assert "runner token rejected (regenerated or runner deleted)" in log
    assert server.runner_token not in log
