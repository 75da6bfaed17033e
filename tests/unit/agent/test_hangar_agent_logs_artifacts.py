"""`hangar-agent run` (the real CLI in a subprocess) streaming a job's stderr as its log and uploading its
artifacts, against the fake Hangar that implements the logs and artifacts routes and a fake S3."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_hangar import FakeHangar
from harness import AgentProc

# The job COMMAND: follows the payload's steps, then prints a JSON result naming its artifacts directory
# and what that directory held when the command started.
STEPS_SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib, sys, time
    job = json.load(sys.stdin)
    p = job.get("payload") or {}
    art = pathlib.Path(os.environ["HANGAR_ARTIFACTS_DIR"])
    seen = sorted(str(x.relative_to(art)) for x in art.rglob("*"))
    for step in p.get("steps", []):
        kind = step[0]
        if kind == "err":
            sys.stderr.write(step[1]); sys.stderr.flush()
        elif kind == "lines":
            for i in range(step[1]):
                sys.stderr.write("line %06d %s\\n" % (i, "x" * step[2]))
            sys.stderr.flush()
        elif kind == "sleep":
            time.sleep(step[1])
        elif kind == "file":
            path = art / step[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes.fromhex(step[2]))
        elif kind == "touch":
            pathlib.Path(step[1]).touch()
        elif kind == "wait":
            while not pathlib.Path(step[1]).exists():
                time.sleep(0.05)
        elif kind == "ticks":
            while True:
                sys.stderr.write("tick\\n"); sys.stderr.flush(); time.sleep(0.2)
    print(json.dumps({"artifactsDir": str(art), "seenAtStart": seen}))
    sys.exit(p.get("exit", 0))
    """
)

REPORT = json.dumps({"version": "2.1.0", "runs": []}).encode()
BINARY = bytes(range(256)) * 40
NOTES = "résumé: 3 findings\n".encode()


@pytest.fixture
def run_steps(tmp_path: Path, start_agent: Callable[..., AgentProc]) -> Callable[..., AgentProc]:
    script = tmp_path / "steps.py"
    script.write_text(STEPS_SCRIPT)

    def start(*extra: str, **kwargs: Any) -> AgentProc:
        return start_agent(*extra, exec_cmd=f"{sys.executable} {script}", **kwargs)

    return start


def files_steps() -> list[list[Any]]:
    return [
        ["file", "report.sarif", REPORT.hex()],
        ["file", "data.bin", BINARY.hex()],
        ["file", "sub/notes.txt", NOTES.hex()],
    ]


def wait_final(server: FakeHangar, job_id: str, agent: AgentProc, timeout: float = 20) -> dict[str, Any]:
    assert server.wait_for(lambda: bool(server.final_reports(job_id)), timeout=timeout), agent.log()
    (report,) = server.final_reports(job_id)
    return report


def request_index(server: FakeHangar, predicate: Callable[[Any], bool]) -> list[int]:
    with server.cond:
        return [i for i, r in enumerate(server.requests) if predicate(r)]


def test_stderr_streams_while_the_job_runs_and_artifacts_upload_before_the_report(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    steps = [
        ["err", "starting scan\n"],
        ["sleep", 2.5],  # longer than the 1 s batching interval: the first line goes on its own
        ["lines", 300, 40],
        *files_steps(),
        ["err", "done ✓\n"],
    ]
    job_id = server.enqueue({"steps": steps})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report["status"] == "completed", report
    job = server.jobs[job_id]

    # The log is the command's stderr, byte for byte, sent in order while the command ran.
    expected = "starting scan\n" + "".join(f"line {i:06d} {'x' * 40}\n" for i in range(300)) + "done ✓\n"
    assert job.log_text == expected
    sent = server.log_requests(job_id)
    assert [body["seq"] for body in sent] == list(range(len(sent)))
    assert sent[0]["data"] == "starting scan\n"  # streamed before the rest was even written
    assert not job.truncated

    # Artifacts: every file, with its name, a guessed content type, its size and its exact bytes.
    uploaded = {a.name: a for a in job.artifacts}
    assert sorted(uploaded) == ["data.bin", "report.sarif", "sub/notes.txt"]
    assert {name: (a.content_type, a.size) for name, a in uploaded.items()} == {
        "data.bin": ("application/octet-stream", len(BINARY)),
        "report.sarif": ("application/sarif+json", len(REPORT)),
        "sub/notes.txt": ("text/plain", len(NOTES)),
    }
    assert uploaded["data.bin"].data == BINARY
    assert uploaded["report.sarif"].data == REPORT
    assert uploaded["sub/notes.txt"].data == NOTES
    for artifact in uploaded.values():  # the PUT carried the headers Hangar returned, never the runner token
        assert artifact.put_headers["x-amz-server-side-encryption"] == "AES256"
        assert "x-runner-token" not in artifact.put_headers

    # Uploads and the whole log reached the server before the final report.
    final = request_index(server, lambda r: r.path.endswith("/status") and r.body["status"] == "completed")
    puts = request_index(server, lambda r: r.method == "PUT")
    logs = request_index(server, lambda r: r.path.endswith("/logs"))
    assert len(puts) == 3 and max(puts) < final[0] and max(logs) < final[0]

    # The artifacts directory was fresh and empty, and is gone afterwards.
    result = report["result"]
    assert result["seenAtStart"] == []
    assert not Path(result["artifactsDir"]).exists()
    assert agent.terminate_and_wait() == 0
    log = agent.log()
    assert server.runner_token not in log
    assert log.count("event=artifact_uploaded") == 3


def test_every_job_gets_its_own_empty_artifacts_directory(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    first = server.enqueue({"steps": [["file", "a.txt", b"one".hex()]]})
    second = server.enqueue({"steps": [["file", "a.txt", b"two".hex()]]})
    agent = run_steps()
    one, two = wait_final(server, first, agent), wait_final(server, second, agent)
    assert one["result"]["seenAtStart"] == two["result"]["seenAtStart"] == []
    assert one["result"]["artifactsDir"] != two["result"]["artifactsDir"]
    assert [a.data for a in server.jobs[first].artifacts] == [b"one"]
    assert [a.data for a in server.jobs[second].artifacts] == [b"two"]
    assert agent.terminate_and_wait() == 0


def test_an_artifact_the_server_refuses_fails_the_job_with_a_clear_error(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    server.max_artifacts = 2
    job_id = server.enqueue({"steps": files_steps()})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report["status"] == "failed"
    assert report["error"] == (
        "artifact upload failed: sub/notes.txt: refused by the server: artifact_limit_reached: "
        "A job has at most 2 artifacts"
    )
    assert "result" not in report
    assert agent.terminate_and_wait() == 0
    assert "event=artifact_upload_failed" in agent.log()


def test_storage_refusing_the_size_fails_the_job(server: FakeHangar, run_steps: Callable[..., AgentProc]) -> None:
    """S3 refuses a PUT whose size is not the one its presigned URL is bound to: the job is failed."""
    server.signed_size_delta = 1
    job_id = server.enqueue({"steps": [["file", "report.json", b'{"ok": true}'.hex()]]})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report["status"] == "failed"
    assert report["error"].startswith(
        "artifact upload failed: report.json: upload failed: the storage service answered HTTP 403 "
        "SignatureDoesNotMatch"
    ), report["error"]
    assert server.jobs[job_id].artifacts[0].data is None
    assert agent.terminate_and_wait() == 0


def test_a_failing_command_that_also_fails_to_upload_reports_both(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    server.max_artifacts = 0
    job_id = server.enqueue({"steps": [["err", "scanner crashed\n"], ["file", "partial.txt", b"p".hex()]], "exit": 4})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report["status"] == "failed"
    assert report["error"].startswith("artifact upload failed: partial.txt: refused by the server")
    assert report["error"].endswith("the command failed too: exit status 4: scanner crashed")
    assert agent.terminate_and_wait() == 0


def test_storage_errors_are_retried(server: FakeHangar, run_steps: Callable[..., AgentProc]) -> None:
    server.s3_503 = 1
    job_id = server.enqueue({"steps": [["file", "a.txt", b"retried".hex()]]})
    agent = run_steps()
    assert wait_final(server, job_id, agent)["status"] == "completed"
    assert [a.data for a in server.jobs[job_id].artifacts] == [b"retried"]
    assert len([r for r in server.requests if r.method == "PUT"]) == 2
    assert agent.terminate_and_wait() == 0


def test_past_the_log_cap_the_job_still_completes_and_no_more_is_sent(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    server.log_cap = 1000
    job_id = server.enqueue({"steps": [["lines", 2000, 30]]})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report["status"] == "completed"
    job = server.jobs[job_id]
    assert job.truncated and job.log_bytes <= 1000
    sent = server.log_requests(job_id)
    assert len(sent) == len(job.log_chunks) + 1  # the accepted ones, then the one refused with 413
    assert agent.terminate_and_wait() == 0
    assert "event=job_log_limit_reached" in agent.log()


def test_cancel_requested_in_a_log_answer_cancels_the_job(
    server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    server.heartbeat_reports_cancels = False  # only the log stream can tell the agent
    server.cancel_on_first_log = True
    job_id = server.enqueue({"steps": [["file", "never.txt", b"x".hex()], ["ticks"]]})
    agent = run_steps()
    report = wait_final(server, job_id, agent)
    assert report == {"jobId": job_id, "status": "failed", "error": "cancelled"}
    assert server.jobs[job_id].status == "cancelled"
    assert server.jobs[job_id].artifacts == []  # a cancelled job's artifacts are not uploaded
    assert server.jobs[job_id].log_text.startswith("tick\n")
    assert agent.terminate_and_wait() == 0
    assert "event=job_cancel_requested" in agent.log()


def test_a_slow_log_server_never_blocks_the_command(
    tmp_path: Path, server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    marker = tmp_path / "command-done"
    server.log_gate = threading.Event()  # no log request is answered until the gate opens
    job_id = server.enqueue({"steps": [["lines", 10000, 90], ["touch", str(marker)]]})  # ~1 MiB of stderr
    agent = run_steps()
    # The command writes far more than a pipe holds and finishes while the server answers nothing.
    assert server.wait_for(marker.exists, timeout=30), agent.log()
    assert server.log_requests(job_id) == []
    server.log_gate.set()
    report = wait_final(server, job_id, agent, timeout=60)
    assert report["status"] == "completed"
    assert server.jobs[job_id].log_text == "".join(f"line {i:06d} {'x' * 90}\n" for i in range(10000))
    assert agent.terminate_and_wait() == 0


def test_a_full_spool_drops_output_and_says_so_in_the_log(
    tmp_path: Path, server: FakeHangar, run_steps: Callable[..., AgentProc]
) -> None:
    marker, go_on = tmp_path / "command-done", tmp_path / "go-on"
    server.log_gate = threading.Event()
    steps = [["lines", 20000, 90], ["touch", str(marker)], ["wait", str(go_on)], ["err", "the end\n"]]
    job_id = server.enqueue({"steps": steps})
    agent = run_steps("--log-spool", "64K")
    assert server.wait_for(marker.exists, timeout=30), agent.log()
    server.log_gate.set()
    # Once the server has taken what the spool held, there is room again: the last line is kept.
    assert server.wait_for(lambda: len(server.log_requests(job_id)) >= 2, timeout=30), agent.log()
    go_on.touch()
    report = wait_final(server, job_id, agent, timeout=60)
    assert report["status"] == "completed"
    text = server.jobs[job_id].log_text
    dropped = "of this job's output were dropped here: the Hangar API did not keep up with it\n"
    assert text.endswith(dropped + "the end\n"), text[-300:]
    assert text.startswith("line 000000 ") and len(text) < 20000 * 102
    assert agent.terminate_and_wait() == 0
    assert "event=job_log_dropped" in agent.log()
