"""The README's quick start and "Try it", run as a new user runs them: every block marked
`<!-- readme-test -->`, in the order written, in one bash (so variables carry over, as in one shell),
from the repository's root, against one `python -m local` started here, with the real `hangar-agent`.

The only placeholder is make run's URL (`http://127.0.0.1:3000`), replaced by this server's, as the README
tells a user who picks another PORT. bash runs with `-euo pipefail`, so a failing command stops the
story; and every request the server saw must be 2xx unless the README announces its status on the
command's line (`# → 401 ...`): the server's own request log is the witness, so a non-2xx hidden by a
plain `curl` still fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

from local import REPO_ROOT
from local.testing import LocalApi, start_local_api

README = REPO_ROOT / "README.md"
MARKER = "<!-- readme-test -->"
BLOCK_RE = re.compile(r"^<!-- readme-test -->\n```sh\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
ANNOUNCED_RE = re.compile(r"# → (\d{3})\b")
README_API_URL = "http://127.0.0.1:3000"
STORY_TIMEOUT_SECONDS = 240  # generous: the story itself takes seconds; the machine may be loaded


def readme_blocks(text: str) -> list[str]:
    return BLOCK_RE.findall(text)


def test_every_marker_opens_a_shell_block() -> None:
    """A marker before anything but a ```sh block would silently drop that block from the story."""
    text = README.read_text()
    assert text.count(MARKER) == len(readme_blocks(text)) >= 5


def test_the_story_starts_from_make_runs_url_and_uses_the_real_agent() -> None:
    blocks = readme_blocks(README.read_text())
    assert f"API={README_API_URL}" in blocks[0]
    story = "\n".join(blocks)
    assert ".venv/bin/hangar-agent register" in story and ".venv/bin/hangar-agent run" in story


def _requests_seen(api: LocalApi) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request, from the server's JSON request log."""
    seen = []
    for line in api.output().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == "request":
            seen.append((entry["method"], entry["path"], int(entry["status"])))
    return seen


def _run_story(script: str, home: Path) -> tuple[int, str]:
    """bash -euo pipefail in its own session; whatever it left running (the agent) is killed after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANGAR_AGENT", "HANGAR_ENROLLMENT"))}
    env.update({"HOME": str(home), "NO_COLOR": "1"})
    output = home / "story.out"
    with output.open("wb") as sink:
        # Output to a file, not a pipe: a background agent left running would hold a pipe open.
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(STORY_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return code, output.read_text(errors="replace")


def test_readme_story_runs_in_order_against_one_server(tmp_path: Path) -> None:
    for tool in (".venv/bin/python", ".venv/bin/hangar-agent"):
        assert (REPO_ROOT / tool).exists(), f"the README uses {tool}: run `make install`"
    blocks = readme_blocks(README.read_text())
    announced = Counter(int(status) for block in blocks for status in ANNOUNCED_RE.findall(block))

    api = start_local_api(extra_env={"HANGAR_LOCAL_LOG": "json"})
    try:
        script = "\n".join(blocks).replace(README_API_URL, api.url)
        code, output = _run_story(script, tmp_path)
        seen = _requests_seen(api)
        token = api.jwt("demo", "jobs:read")
        jobs = api.call("GET", "/v1/jobs?limit=200", token=token).body["jobs"]
    finally:
        api.stop()

    assert code == 0, f"the README's story stopped (exit {code}); its output:\n{output}"
    failures = [request for request in seen if not 200 <= request[2] < 300]
    unannounced = Counter(status for _, _, status in failures) - announced
    assert not unannounced, f"non-2xx answers the README does not announce: {failures}\n{output}"
    assert Counter(status for _, _, status in failures) == announced, f"announced but not seen: {failures}"
    # What the story says happens did happen: the agent's job and the hand-run job completed, the last
    # one was cancelled; and the agent wrote its config into the (test's) home directory.
    assert Counter(job["status"] for job in jobs) == {"completed": 2, "cancelled": 1}, jobs
    assert {job["result"]["findings"] for job in jobs if job["status"] == "completed"} == {0}
    assert (tmp_path / ".config" / "hangar" / "agent.json").is_file()
    # The refusal the README shows says why, and the job's log is what its command wrote to stderr.
    assert '"code":"token_regenerated"' in output.replace(" ", ""), output
    assert re.search(r"^scanning job_\w+$", output, re.MULTILINE), output
    assert any(path.startswith("/api/runners/jobs") for _, path, _ in seen)
