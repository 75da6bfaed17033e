"""End-to-end fixtures: one real `python -m local` per test session (per xdist worker), over HTTP.

    def test_something(local_api, org):
        token = local_api.jwt(org, "runners:read runners:manage")
        status, headers, body = local_api.call("POST", "/api/runners", token=token, json={...})
        local_api.advance_clock(120)              # handlers, authorizer cache and limits move together
        local_api.run_schedule("SweeperFunction")  # the timer is off: tests sweep when they mean to

The server is shared: every test works in its own org (`org` fixture / `unique_org()`), and the clock
only moves forward. When a test fails, the server's output during that test is attached to the report.

`HANGAR_E2E_DYNAMODB=local` runs the suite on AWS's DynamoDB Local instead of the embedded moto: each
test session (each xdist worker) starts one and stops it at the end, and every server started in it has
tables of its own (`local.testing.start_local_api`). `make test` runs the suite both ways.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from agents import (  # noqa: E402
    FAST_INTERVALS,
    JOB_SCRIPT,
    JOB_SCRIPT_NAME,
    AgentProcess,
    Registered,
    process_alive,
    process_cmdline,
)
from support import ensure_agent_wheel  # noqa: E402

from local.testing import (  # noqa: E402
    RUNNING,
    TEST_DYNAMODB_VARIABLE,
    LocalApi,
    start_dynamodb_local,
    start_local_api,
    unique_org,
)

_E2E_DIR = Path(__file__).resolve().parent
_MARKS = pytest.StashKey[dict[int, int]]()


ON_DYNAMODB_LOCAL = os.environ.get("HANGAR_E2E_DYNAMODB", "moto") == "local"


@pytest.fixture(scope="session", autouse=True)
def dynamodb_local() -> Iterator[str | None]:
    """With HANGAR_E2E_DYNAMODB=local: DynamoDB Local for this session, used by every server it starts."""
    if not ON_DYNAMODB_LOCAL:
        yield None
        return
    database = start_dynamodb_local()
    os.environ[TEST_DYNAMODB_VARIABLE] = database.endpoint
    try:
        yield database.endpoint
    finally:
        os.environ.pop(TEST_DYNAMODB_VARIABLE, None)
        database.stop()


@pytest.fixture(scope="session")
def local_api() -> Iterator[LocalApi]:
    """`python -m local serve --port 0` as a subprocess (schedules off), stopped at the session's end."""
    # The install script carries the agent wheel built from this checkout (make agent-wheel), as in AWS.
    ensure_agent_wheel()
    api = start_local_api(timeout=60)
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def fast_api() -> Iterator[LocalApi]:
    """local/ whose heartbeat and poll intervals are 2 s and 1 s (the defaults are 30 s and 10 s), one per module
    (for the agent tests: an idle agent picks up a job at once)."""
    api = start_local_api(extra_env=FAST_INTERVALS, timeout=60)
    try:
        yield api
    finally:
        api.stop()


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
            if process_alive(pid) and JOB_SCRIPT_NAME in process_cmdline(pid):
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


@pytest.fixture
def org() -> str:
    """A fresh org id for this test."""
    return unique_org()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_moto_only = pytest.mark.skip(reason="runs on AWS's DynamoDB Local only (make e2e-dynamodb-local)")
    for item in items:
        if _E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
        if not ON_DYNAMODB_LOCAL and item.get_closest_marker("dynamodb_local_only"):
            item.add_marker(on_moto_only)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    item.stash[_MARKS] = {id(api): api.output_mark() for api in RUNNING}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test gets the output of every server running during it (from the test's start)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        marks = item.stash.get(_MARKS, {})
        for api in RUNNING:
            output = api.output(marks.get(id(api), 0))
            report.sections.append((f"python -m local on {api.url}, during this test", output[-20000:] or "(none)"))
