"""End-to-end tests of the reference runner agent against an in-process fake Hangar server.

The agent is always run through its real CLI (``python -m hangar_agent``) in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fake_hangar import FakeHangar
from harness import AGENT_VERSION, AgentProc, cli, gone_within, write_config, written_pid


def final_reports(server: FakeHangar, job_id: str) -> list[dict[str, Any]]:
    return server.final_reports(job_id)


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


def register_args(server: FakeHangar, *extra: str) -> list[str]:
    return ["register", "--api-url", server.url, *extra]


def test_register_reads_the_token_from_a_file_stdin_or_the_environment(tmp_path: Path, server: FakeHangar) -> None:
    token_file = tmp_path / "enrollment-token"
    token_file.write_text(server.enrollment_token + "\n")
    sources: list[tuple[list[str], dict[str, str], str | None]] = [
        (["--token-file", str(token_file)], {}, None),
        (["--token-file", "-"], {}, server.enrollment_token + "\n"),
        ([], {"HANGAR_ENROLLMENT_TOKEN": server.enrollment_token}, None),
    ]
    for index, (args, env, stdin) in enumerate(sources):
        config = tmp_path / f"agent{index}.json"
        res = cli(register_args(server, *args), config, stdin=stdin, **env)
        assert res.returncode == 0, (args, res.stderr)
        assert json.loads(config.read_text())["token"] == server.runner_token
    sent = [r.body["token"] for r in server.of("/v1/runners/register")]
    assert sent == [server.enrollment_token] * 3


def test_register_token_errors_are_clear(tmp_path: Path, server: FakeHangar) -> None:
    config = tmp_path / "agent.json"
    token_file = tmp_path / "t"
    token_file.write_text(server.enrollment_token)
    both = cli(register_args(server, "--token-file", str(token_file), "--token", server.enrollment_token), config)
    assert both.returncode == 1 and "not both" in both.stderr
    missing = cli(register_args(server, "--token-file", str(tmp_path / "nope")), config)
    assert missing.returncode == 1 and "token_file: cannot read" in missing.stderr
    none = cli(register_args(server), config)
    assert none.returncode == 1 and "HANGAR_ENROLLMENT_TOKEN" in none.stderr
    empty = cli(register_args(server, "--token-file", "-"), config, stdin="\n")
    assert empty.returncode == 1 and "no enrollment token" in empty.stderr
    assert server.of("/v1/runners/register") == [] and not config.exists()


def test_status_asks_the_server_whether_the_runner_is_online(tmp_path: Path, server: FakeHangar) -> None:
    config = write_config(tmp_path / "agent.json", server)
    before = cli(["status"], config)
    assert before.returncode == 0, before.stderr
    assert "Status:       offline (as the server sees it)" in before.stdout
    assert "Heartbeat:    never" in before.stdout
    (me,) = server.of("/api/runners/me")
    assert me.method == "GET" and me.headers["x-runner-token"] == server.runner_token

    server.last_heartbeat_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    after = cli(["status"], config)
    assert after.returncode == 0 and "Status:       online (as the server sees it)" in after.stdout
    assert f"Heartbeat:    {server.last_heartbeat_at} (" in after.stdout and " s ago)" in after.stdout
    assert server.runner_token not in after.stdout + after.stderr

    offline = cli(["status", "--offline"], config)
    assert offline.returncode == 0 and "Status:" not in offline.stdout
    assert len(server.of("/api/runners/me")) == 2


def test_status_says_when_the_token_is_rejected_or_the_server_unreachable(tmp_path: Path, server: FakeHangar) -> None:
    rejected = cli(["status"], write_config(tmp_path / "old.json", server, token="hgr_" + "0" * 40))
    assert rejected.returncode == 2
    assert "runner token rejected: regenerated, or the runner deleted (register again)" in rejected.stdout
    config = tmp_path / "gone.json"
    config.write_text(
        json.dumps({**json.loads(write_config(config, server).read_text()), "apiUrl": "http://127.0.0.1:9"})
    )
    unreachable = cli(["status"], config)
    assert unreachable.returncode == 1 and "Server:       unreachable" in unreachable.stdout
    assert "Runner id:" in unreachable.stdout  # the local part is shown regardless


def test_run_help_explains_the_command_contract(tmp_path: Path) -> None:
    res = cli(["run", "--help"], tmp_path / "agent.json")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for phrase in (
        "stdin is the job as JSON",
        "HANGAR_JOB_ID",
        "HANGAR_ARTIFACTS_DIR (a fresh, empty directory)",
        "stderr is the job's log: streamed to Hangar while the job runs",
        "stdout is the result: a JSON object becomes the job's result",
        "exit 0 reports the job completed; non-zero reports it failed",
        "a failed upload fails the job",
        "exits 0 after SIGTERM/SIGINT",
        "2 when the server rejects the runner token",
        "--log-spool",
    ):
        assert phrase in text, phrase


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
    assert server.wait_for(lambda: bool(server.reports(job_id))), agent.log()
    child = written_pid(server, pid_file)
    server.cancel(job_id)
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=8), agent.log()
    (report,) = final_reports(server, job_id)
    assert report["status"] == "failed"
    assert report["error"] == "cancelled"
    assert server.jobs[job_id].status == "cancelled"
    assert gone_within(child), "the job's child process survived cancellation"
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


def test_timeout_kills_and_reports_failed(
    tmp_path: Path, server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    pid_file = tmp_path / "job.pid"
    job_id = server.enqueue(None, timeoutSeconds=1)
    agent = start_agent(exec_cmd=f"echo $$ > {pid_file}; exec sleep 30")
    assert server.wait_for(lambda: bool(final_reports(server, job_id)), timeout=8), agent.log()
    assert final_reports(server, job_id)[0] == {"jobId": job_id, "status": "failed", "error": "timeout"}
    assert gone_within(written_pid(server, pid_file)), "the timed-out job's process survived"
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
    # Its last word, after the final report: the runner is offline now, not online until it goes stale.
    last = server.requests[-1]
    assert last.path == "/api/runners/heartbeat"
    assert last.body["status"] == "offline"
    assert last.at >= server.of("/api/runners/jobs/status")[-1].at
    assert "event=runner_offline" in agent.log()


def test_a_server_that_refuses_the_offline_heartbeat_still_gets_a_clean_stop(
    server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    server.offline_refused = True
    agent = start_agent()
    assert server.wait_for(lambda: bool(server.of("/api/runners/heartbeat"))), agent.log()
    assert agent.terminate_and_wait() == 0
    offline = [r for r in server.of("/api/runners/heartbeat") if r.body["status"] == "offline"]
    assert len(offline) == 1  # tried once: a 400 is final
    assert "event=offline_heartbeat_failed status=400" in agent.log()


def test_sigterm_after_grace_kills_job_and_reports_shutdown(
    tmp_path: Path, server: FakeHangar, start_agent: Callable[..., AgentProc]
) -> None:
    pid_file = tmp_path / "job.pid"
    job_id = server.enqueue(None)
    # The job outlives the grace (0.5 s) by far: the agent must kill it, not wait for it.
    agent = start_agent(exec_cmd=f"echo $$ > {pid_file}; exec sleep 30", grace=0.5)
    assert server.wait_for(lambda: bool(server.reports(job_id))), agent.log()
    job_pid = written_pid(server, pid_file)
    time.sleep(0.2)
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=10) == 0
    assert gone_within(job_pid), "the job outlived the agent's grace"
    assert final_reports(server, job_id) == [{"jobId": job_id, "status": "failed", "error": "agent shutdown"}]


def test_rejected_token_exits_2(server: FakeHangar, start_agent: Callable[..., AgentProc]) -> None:
    server.heartbeat_401 = True
    agent = start_agent()
    assert agent.proc.wait(timeout=10) == 2
    log = agent.log()
    assert "runner token rejected (regenerated or runner deleted)" in log
    assert server.runner_token not in log
    assert all(r.body["status"] != "offline" for r in server.of("/api/runners/heartbeat"))
