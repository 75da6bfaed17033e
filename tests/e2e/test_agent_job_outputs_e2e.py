"""The agent's job log and artifacts end to end, all real processes: `python -m local`, `hangar-agent
register` and `hangar-agent run`. The job command writes 2,000 stderr lines over about 5 s and two files
into `$HANGAR_ARTIFACTS_DIR`; a follower reading `GET /v1/jobs/{jobId}/logs` while it runs sees lines
before the job ends; afterwards the whole log equals what the command wrote, byte for byte, and both
artifacts download with the same bytes and content type."""

from __future__ import annotations

import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from agents import AgentProcess, agent_job, register, wait_for_jobs
from http_builders import get_job, set_license, user_jwt

from local.testing import LocalApi, unique_org

LINES = 2000
REPORT = b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "e2e"}}, "results": []}]}\n'
SUMMARY = "<!doctype html><title>e2e</title><p>0 findings ✓</p>\n".encode()

# The job command: 2,000 numbered stderr lines (some non-ASCII), 2.5 ms apart, two files in the
# artifacts directory, then its JSON result on stdout.
LOGGING_JOB = f"""\
import json, os, sys, time

for number in range({LINES}):
    sys.stderr.write("line %04d of the scan: checked modules/net/main.tf ✓ %s\\n" % (number, "x" * (number % 40)))
    sys.stderr.flush()
    time.sleep(0.0025)
directory = os.environ["HANGAR_ARTIFACTS_DIR"]
with open(os.path.join(directory, "report.sarif.json"), "wb") as handle:
    handle.write({REPORT!r})
with open(os.path.join(directory, "summary.html"), "wb") as handle:
    handle.write({SUMMARY!r})
print(json.dumps({{"findings": 0}}))
"""


def expected_log() -> str:
    return "".join(
        f"line {number:04d} of the scan: checked modules/net/main.tf ✓ {'x' * (number % 40)}\n"
        for number in range(LINES)
    )


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    script = tmp_path / "logging_job.py"
    script.write_text(LOGGING_JOB)
    started: list[AgentProcess] = []

    def start(registered: Any) -> AgentProcess:
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
        process = AgentProcess(registered, command, tmp_path / f"{registered.name}.log", grace=5.0)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()


def test_an_agent_streams_the_log_and_uploads_the_artifacts(
    fast_api: LocalApi, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    org = unique_org("agent-out")
    set_license(fast_api, org, plan="team")
    running = agent(register(fast_api, org, tmp_path, "streamer"))
    job_id = agent_job(fast_api, org, {})
    token = user_jwt(fast_api, org)
    followed: list[str] = []
    seen_while_running: list[str] = []

    def follow() -> None:
        cursor = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            page = fast_api.call(
                "GET", f"/v1/jobs/{job_id}/logs" + (f"?cursor={cursor}" if cursor else ""), token=token
            )
            assert page.status == 200, page
            data = [chunk["data"] for chunk in page.body["chunks"]]
            followed.extend(data)
            if data and get_job(fast_api, org, job_id)["status"] == "running":
                seen_while_running.extend(data)  # read, and the job had not ended after it
            if page.body["complete"]:
                return
            cursor = page.body["nextCursor"] or cursor
            time.sleep(0.5)

    follower = threading.Thread(target=follow)
    follower.start()
    (job,) = wait_for_jobs(fast_api, org, [job_id], ("completed", "failed"), 120, running)
    follower.join(60)
    assert job["status"] == "completed", (job, running.log())
    assert job["result"] == {"findings": 0}
    assert seen_while_running, "the follower saw no line before the job ended"
    assert "".join(followed) == expected_log()

    text = fast_api.call("GET", f"/v1/jobs/{job_id}/logs?format=text", token=token)
    assert text.status == 200 and text.body == expected_log()
    assert text.headers["Hangar-Log-Complete"] == "true"
    assert job["logBytes"] == len(expected_log().encode()) and job["truncated"] is False

    listed = fast_api.call("GET", f"/v1/jobs/{job_id}/artifacts", token=token)
    assert listed.status == 200, listed
    by_name = {artifact["name"]: artifact for artifact in listed.body["artifacts"]}
    assert set(by_name) == {"report.sarif.json", "summary.html"}
    for name, content in (("report.sarif.json", REPORT), ("summary.html", SUMMARY)):
        artifact = by_name[name]
        download = requests.get(artifact["downloadUrl"], timeout=10)
        assert download.status_code == 200 and download.content == content, name
        assert artifact["size"] == len(content)
        assert download.headers["Content-Type"] == artifact["contentType"], name
