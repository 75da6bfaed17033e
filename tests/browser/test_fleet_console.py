"""The console end to end, as a new user would use it against `make run`: sign in with the dev API key,
enroll a runner and register a real `hangar-agent` with the command the console copied, see it online,
run a job from the form and watch its log and status, cancel a second job, stop the agent and see the
runner offline, mark it offline from the console, delete the runner."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_harness import ConsoleServer, screenshot, sign_in
from playwright.sync_api import Page, expect

from local.testing import http_call

AGENT_BIN = Path(sys.executable).parent
JOB_SCRIPT = """\
import json, os, sys, time
for number in range(1, 7):
    print(f"scanning module {number} of 6", file=sys.stderr, flush=True)
    time.sleep(0.4)
print("scan finished: 0 findings", file=sys.stderr, flush=True)
with open(os.path.join(os.environ["HANGAR_ARTIFACTS_DIR"], "report.txt"), "w") as report:
    report.write("0 findings\\n")
print(json.dumps({"findings": 0, "job": os.environ["HANGAR_JOB_ID"]}))
"""


@pytest.fixture
def agent_home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment the copied commands run in: this checkout's hangar-agent on PATH, its config in
    tmp_path. Every agent started from it is killed at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")}
    env["PATH"] = f"{AGENT_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HANGAR_AGENT_CONFIG"] = str(tmp_path / "agent.json")
    yield env


def copied(page: Page, block: str) -> str:
    """Clicks the Copy button of a copy block and returns what the clipboard then holds."""
    container = page.locator(f'[data-copy="{block}"]')
    container.get_by_role("button", name="Copy").click()
    expect(container.get_by_role("status")).to_have_text("Copied")
    text: str = page.evaluate("navigator.clipboard.readText()")
    assert text == container.locator("code").inner_text()
    return text


def runner_row(page: Page, name: str) -> object:
    return page.locator("tr", has=page.get_by_text(name, exact=True))


def wait_until(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_new_user_enrolls_a_runner_runs_a_job_cancels_one_and_deletes_the_runner(
    page: Page, server: ConsoleServer, agent_home: dict[str, str], tmp_path: Path
) -> None:
    sign_in(page, server)
    expect(page.get_by_text("demo · team")).to_be_visible()

    # Enroll: an enrollment token, and the register command with a copy button and an expiry countdown.
    page.get_by_role("button", name="Enroll a runner").click()
    page.get_by_label("Runner name (optional)").fill("browser-runner")
    page.get_by_label("Labels (jobs are routed by them)").fill("linux, console")
    page.get_by_role("button", name="Create enrollment token").click()
    expiry = page.get_by_role("timer")
    expect(expiry).to_contain_text("expires in 29:")
    first = expiry.inner_text()
    expect(expiry).not_to_have_text(first, timeout=5000)  # it counts down
    screenshot(page, "enroll")
    register = copied(page, "Register")
    assert "hangar-agent register" in register and "--label linux --label console" in register
    page.keyboard.press("Escape")

    # The copied command, run as the user would paste it; then the agent itself.
    done = subprocess.run(["bash", "-c", register], env=agent_home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    runner_id = json.loads(Path(agent_home["HANGAR_AGENT_CONFIG"]).read_text())["runnerId"]
    row = page.locator(f'tr[data-runner-id="{runner_id}"]')
    expect(row).to_be_visible(timeout=5000)
    expect(row.locator(".badge")).to_have_text("offline")

    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    agent = subprocess.Popen(
        ["hangar-agent", "run", "--exec", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"],
        env=agent_home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "agent.log").open("wb"),
        start_new_session=True,
    )
    try:
        _run_the_flow(page, server, runner_id, agent, tmp_path)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(10)


def _runner_status(server: ConsoleServer, runner_id: str) -> str:
    result = server.api.call("GET", f"/api/runners/{runner_id}", api_key=server.dev_key)
    return str(result.body["data"]["status"]) if result.status == 200 else f"HTTP {result.status}"


def _run_the_flow(
    page: Page, server: ConsoleServer, runner_id: str, agent: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    row = page.locator(f'tr[data-runner-id="{runner_id}"]')
    # Online: the console shows it within 5 s of the API saying so.
    wait_until("the runner's first heartbeat", lambda: _runner_status(server, runner_id) == "online")
    expect(row.locator(".badge")).to_have_text("online", timeout=5000)
    expect(row.locator("time")).to_have_text(re.compile(r"^\d+ s ago$"))
    expect(row).to_contain_text("CPU")  # system info from the agent's heartbeat
    screenshot(page, "runners")

    # A job from the form: its log arrives while it runs, then it completes with its result.
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    page.get_by_role("button", name="New job").click()
    page.get_by_label("Repository", exact=True).fill("acme/terraform-infra")
    page.get_by_label("Branch").fill("main")
    page.locator("#job-labels").fill("linux")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Job job_"))).to_be_visible()
    job_id = page.url.rsplit("/", 1)[1]
    log = page.get_by_label("Job log")
    expect(log).to_contain_text("scanning module 1 of 6", timeout=20000)
    expect(page.locator(".badge").first).to_have_text("completed", timeout=30000)
    expect(log).to_contain_text("scan finished: 0 findings")
    expect(page.get_by_text("End of log.")).to_be_visible(timeout=10000)
    expect(page.locator("pre.json")).to_contain_text('"findings": 0')
    artifact = page.locator(".artifacts tr", has=page.get_by_text("report.txt", exact=True))
    download = artifact.get_by_role("link", name="Download")
    expect(download).to_be_visible(timeout=10000)
    fetched = http_call("GET", str(download.get_attribute("href")))  # a presigned URL: no credential needed
    assert fetched.status == 200 and fetched.body == "0 findings\n", fetched
    screenshot(page, "job")

    # A second job nobody can run (no runner has label gpu) stays queued; cancelled after confirming.
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    page.get_by_role("button", name="New job").click()
    page.locator("#job-labels").fill("gpu")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator(".badge").first).to_have_text("queued")
    page.get_by_role("button", name="Cancel job").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Cancel job").click()
    expect(page.locator(".badge").first).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    expect(page.locator(f'tr[data-job-id="{job_id}"] .badge')).to_have_text("completed")
    screenshot(page, "jobs")
    page.get_by_label("Status").select_option("cancelled")
    expect(page.locator("tbody tr .badge").first).to_have_text("cancelled")
    expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_have_count(0)

    page.get_by_role("navigation").get_by_role("link", name="Readiness").click()
    expect(page.locator('[data-check="A runner is online with a free slot"]')).to_have_class(re.compile("ok"))
    expect(page.locator('[data-usage="usage-runners"]')).to_contain_text("1 of 10")
    screenshot(page, "readiness")

    # The agent stops (SIGTERM: a clean exit) and says so: the row reads offline within the console's 5 s
    # refresh, not online until the runner goes stale (90 s).
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(40) == 0, (tmp_path / "agent.log").read_text()
    assert _runner_status(server, runner_id) == "offline"
    page.get_by_role("navigation").get_by_role("link", name="Runners").click()
    row = page.locator(f'tr[data-runner-id="{runner_id}"]')
    expect(row.locator(".badge")).to_have_text("offline", timeout=5000)

    # Back online (a heartbeat with the agent's own token), then marked offline after confirming: the badge
    # follows at once.
    runner_token = json.loads((tmp_path / "agent.json").read_text())["token"]
    back = server.api.call("POST", "/api/runners/heartbeat", runner_token=runner_token, json={"status": "online"})
    assert back.status == 200, back.body
    expect(row.locator(".badge")).to_have_text("online", timeout=5000)
    row.get_by_role("button", name="Mark offline").click()
    page.get_by_role("dialog").get_by_role("button", name="Mark offline").click()
    expect(row.locator(".badge")).to_have_text("offline", timeout=5000)

    # Delete after confirming: Cancel keeps it; confirming removes it.
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete runner").click()
    expect(row).to_have_count(0, timeout=5000)
    assert _runner_status(server, runner_id) == "HTTP 404"


def test_regenerating_a_token_asks_first_and_shows_the_new_token_once(page: Page, server: ConsoleServer) -> None:
    created = server.api.call("POST", "/api/runners", json={"name": "rotated", "labels": []}, api_key=server.dev_key)
    assert created.status == 201, created.body
    runner_id, old_token = created.body["data"]["_id"], created.body["data"]["token"]
    try:
        sign_in(page, server)
        row = page.locator(f'tr[data-runner-id="{runner_id}"]')
        row.get_by_role("button", name="Regenerate token").click()
        page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        row.get_by_role("button", name="Regenerate token").click()
        page.get_by_role("dialog").get_by_role("button", name="Regenerate token").click()
        dialog = page.get_by_role("dialog", name="New runner token")
        new_token = dialog.locator('[data-copy="Runner token"] code').inner_text()
        assert new_token.startswith("hgr_") and new_token != old_token
        expect(dialog.locator('[data-copy="Install script"] code')).to_contain_text(f"/api/runners/{runner_id}/setup")
        refused = server.api.call("POST", "/api/runners/heartbeat", runner_token=old_token, json={"status": "online"})
        accepted = server.api.call("POST", "/api/runners/heartbeat", runner_token=new_token, json={"status": "online"})
        assert (refused.status, accepted.status) == (401, 200)
    finally:
        server.api.call("DELETE", f"/api/runners/{runner_id}", api_key=server.dev_key)


def test_the_jobs_list_pages_by_cursor_and_filters_by_status(page: Page, server: ConsoleServer) -> None:
    # More queued jobs than a page holds (25), with a label no runner has; cancelled again at the end.
    created = []
    for number in range(27):
        job = {"type": "scan", "repositoryName": f"acme/repo-{number}", "labels": ["paging-test"]}
        result = server.api.call("POST", "/v1/jobs", json=job, api_key=server.dev_key)
        assert result.status == 201, result.body
        created.append(result.body["id"])
    try:
        sign_in(page, server)
        page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
        page.get_by_label("Status").select_option("queued")
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(25)
        first_page = rows.first.get_attribute("data-job-id")
        page.get_by_role("button", name="Next page").click()
        expect(rows.first).not_to_have_attribute("data-job-id", str(first_page))
        second_page = set(rows.evaluate_all("rows => rows.map(row => row.dataset.jobId)"))
        assert second_page and len(second_page) <= 25
        page.get_by_role("button", name="Previous page").click()
        expect(rows.first).to_have_attribute("data-job-id", str(first_page))
        expect(page.locator("tbody .badge", has_text="completed")).to_have_count(0)
    finally:
        for job_id in created:
            server.api.call("POST", f"/v1/jobs/{job_id}/cancel", api_key=server.dev_key)
