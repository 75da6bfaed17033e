"""`make test-sam-local`: the stack under `sam local`, in Docker, against make run's embedded backend.

Collected only when HANGAR_SAM_LOCAL=1 (the Makefile target sets it, after building the template for
arm64 into .aws-sam/build and an x86_64 copy into .tools/sam-local/build-x86_64): it needs root,
Debian's docker.io and minutes, none of which `make test` may assume.

Session fixtures, each once per run: the Docker daemon; the base images (x86_64 first; arm64, when
qemu-user-static can run it, built in the background while the x86_64 tests run); one
`python -m tools.sam_local serve` (what `make sam-local` runs: the embedded backend on the docker
bridge, make run's API, and `sam local start-api` on the x86_64 build); and data created through
make run's API, whose ids and credentials fill in the events/ fixtures.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("HANGAR_SAM_LOCAL") != "1":
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".tools" / "sam-local"
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
ARM64_TEMPLATE = ROOT / ".aws-sam" / "build" / "template.yaml"  # make build: the template as deployed
X86_64_TEMPLATE = STATE_DIR / "build-x86_64" / "template.yaml"  # the x86_64 copy: no emulation, faster
EVENTS = ROOT / "events"
ORG = "demo"  # the org the events/ fixtures name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def report(label: str, started: float) -> float:
    """Print how long a step took: make test-sam-local's output is its own cost report."""
    seconds = time.monotonic() - started
    print(f"sam-local: {label}: {seconds:.1f} s", flush=True)
    return seconds


# --- Docker and the base images --------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker() -> Iterator[Any]:
    from docker_engine import docker_daemon

    started = time.monotonic()
    with docker_daemon(STATE_DIR) as engine:
        report("Docker ready", started)
        yield engine


@pytest.fixture(scope="session")
def arm64_unavailable() -> str | None:
    """Why arm64 cannot run here (None: it can, through qemu-user-static)."""
    from docker_engine import arm64_emulation

    reason = arm64_emulation()
    print(f"sam-local: arm64 emulation: {reason or 'available'}", flush=True)
    return reason


@pytest.fixture(scope="session")
def x86_64_image(docker: Any) -> str:
    from base_images import ensure_base_image

    started = time.monotonic()
    image = ensure_base_image(docker, "x86_64", STATE_DIR)
    report("base image x86_64", started)
    return image


class Background:
    """A step run on a thread while the tests that do not need it go ahead (the arm64 image: minutes)."""

    def __init__(self, label: str, step: Callable[[], Any]) -> None:
        self.label = label
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(step,), name=label, daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self, step: Callable[[], Any]) -> None:
        try:
            self._result = step()
            report(f"{self.label} (in the background)", self._started)
        except BaseException as error:  # handed to whoever waits for the result
            self._error = error

    def result(self, timeout: float = 3600) -> Any:
        waited = time.monotonic()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.label}: not done after {timeout:.0f} s")
        report(f"waited for {self.label}", waited)
        if self._error is not None:
            raise self._error
        return self._result


@pytest.fixture(scope="session")
def arm64_image(docker: Any, x86_64_image: str, arm64_unavailable: str | None) -> Iterator[Background | None]:
    """Started once the x86_64 image is there, built while the x86_64 tests run; None without emulation."""
    from base_images import ensure_base_image

    if arm64_unavailable:
        yield None
        return
    building = Background("base image arm64", lambda: ensure_base_image(docker, "arm64", STATE_DIR))
    yield building
    building.result()  # never leave a build running into the daemon's shutdown


# --- the stack: backend, make run's API, sam local start-api ----------------------------------------


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    docker_host: str
    backend_port: int
    env_vars_file: Path
    api_url: str = ""  # make run's gateway (local/)
    sam_url: str = ""  # sam local start-api
    backend_endpoint: str = ""  # the embedded backend, as this machine reaches it
    lines: list[str] = field(default_factory=list)
    both_ready: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        from tools.sam_local import LOCAL_READY_RE, SAM_READY_RE

        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append(line)
            print(line, flush=True)
            if match := LOCAL_READY_RE.search(line):
                self.api_url = match.group(1)
            if match := SAM_READY_RE.search(line):
                self.sam_url = match.group(1)
            if "DynamoDB endpoint:" in line:
                self.backend_endpoint = line.split("DynamoDB endpoint:", 1)[1].split()[0]
            if self.api_url and self.sam_url:
                self.both_ready.set()
        self.both_ready.set()


@pytest.fixture(scope="session")
def stack(docker: Any, x86_64_image: str, arm64_image: Background | None) -> Iterator[Stack]:
    from tools.sam_local import env_vars_for_port, stop_process

    if not X86_64_TEMPLATE.exists() or not ARM64_TEMPLATE.exists():
        pytest.fail("run through `make test-sam-local`: it builds both templates first")
    backend_port = free_port()
    env_file = Path(tempfile.mkstemp(prefix="sam-env-", suffix=".json", dir=STATE_DIR)[1])
    env_file.write_text(json.dumps(env_vars_for_port(backend_port)))
    command = [
        sys.executable, "-m", "tools.sam_local", "serve",
        "--template", str(X86_64_TEMPLATE), "--port", str(free_port()), "--api-port", str(free_port()),
        "--no-schedules", "--", "--skip-pull-image",
    ]  # fmt: skip
    env = {**os.environ, "DOCKER_HOST": docker.host, "HANGAR_BACKEND_PORT": str(backend_port), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    running = Stack(process, docker.host, backend_port, env_file)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        if not running.both_ready.wait(600) or not (running.api_url and running.sam_url):
            pytest.fail("tools.sam_local serve did not start:\n" + "\n".join(running.lines[-50:]))
        report("make sam-local ready (backend, make run's API, sam local start-api)", started)
        yield running
    finally:
        stop_process(process, timeout=60)
        env_file.unlink(missing_ok=True)


# --- data, and the fixtures filled in with it --------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    jwt: str
    runner_id: str
    runner_token: str
    token_prefix: str
    stale_runner_id: str
    stale_runner_token: str
    stale_token_prefix: str
    target_id: str
    job_id: str


def call(base_url: str, method: str, path: str, **kwargs: Any) -> Any:
    from local.testing import http_call

    return http_call(method, base_url + path, **kwargs)


def fixture_body(name: str) -> Any:
    return json.loads(json.loads((EVENTS / f"{name}.json").read_text())["body"])


@pytest.fixture(scope="session")
def fleet(stack: Stack) -> Fleet:
    """Two runners, a target and a job of org demo, created through make run's API (the fixtures' bodies)."""
    from local.devtokens import ALL_SCOPES, mint_dev_jwt

    jwt = mint_dev_jwt(ORG, ALL_SCOPES, sub=f"dev@{ORG}", ttl=3600)
    auth = {"Authorization": f"Bearer {jwt}"}

    def create(path: str, body: Any) -> Any:
        result = call(stack.api_url, "POST", path, headers=auth, json=body)
        assert result.status == 201, (path, result.status, result.body)
        return result.body

    # Two runners: more than the free plan allows (the fixture moves org demo to team).
    team = call(stack.api_url, "PUT", f"/v1/orgs/{ORG}/license", headers=auth, json=fixture_body("PutOrgLicense"))
    assert team.status == 200, team.body
    runner = create("/api/runners", fixture_body("CreateRunner"))["data"]
    stale = create("/api/runners", {**fixture_body("CreateRunner"), "name": "goes-silent"})["data"]
    target = create("/v1/targets", fixture_body("CreateTarget"))
    job = create("/v1/jobs", fixture_body("CreateJob"))
    return Fleet(
        jwt=jwt,
        runner_id=runner["_id"],
        runner_token=runner["token"],
        token_prefix=runner["tokenPrefix"],
        stale_runner_id=stale["_id"],
        stale_runner_token=stale["token"],
        stale_token_prefix=stale["tokenPrefix"],
        target_id=target["id"],
        job_id=job["id"],
    )


# Placeholders of the events/ fixtures, longest first (the token id is a prefix of the runner id).
def filled_event(name: str, fleet: Fleet, *, stale_runner: bool = False) -> dict[str, Any]:
    """events/<name>.json with its placeholder ids and credentials replaced by real ones."""
    runner_id, token, prefix = (
        (fleet.stale_runner_id, fleet.stale_runner_token, fleet.stale_token_prefix)
        if stale_runner
        else (fleet.runner_id, fleet.runner_token, fleet.token_prefix)
    )
    text = (EVENTS / f"{name}.json").read_text()
    for placeholder, value in (
        ("rnr_0123456789abcdef", runner_id),
        ("job_0123456789abcdef", fleet.job_id),
        ("tgt_0123456789abcdef", fleet.target_id),
        ("hgr_<token>", token),
        ("<jwt>", fleet.jwt),
        ("0123456789ab", prefix),
    ):
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


# --- sam local invoke ---------------------------------------------------------------------------------

# Under qemu a cold start takes tens of seconds (Python itself is emulated), more than the functions'
# 10 s timeout: the arm64 invoke runs the template's own build with only Globals' Timeout raised.
EMULATED_TIMEOUT_SECONDS = 300


def emulated_arm64_template() -> Path:
    from tools.sam_local import absolute_code_paths

    text, paths = absolute_code_paths(ARM64_TEMPLATE.read_text(), ARM64_TEMPLATE.parent)
    text, timeouts = re.subn(r"^(    Timeout: )\d+$", rf"\g<1>{EMULATED_TIMEOUT_SECONDS}", text, count=1, flags=re.M)
    assert paths and timeouts == 1, "the built template no longer has the lines this copy rewrites"
    target = STATE_DIR / "template-arm64-emulated.yaml"
    target.write_text(text)
    return target


@dataclass(frozen=True)
class Invocation:
    result: Any
    log: str
    seconds: float


def sam_invoke(stack: Stack, function: str, event: dict[str, Any], template: Path = X86_64_TEMPLATE) -> Invocation:
    """`sam local invoke -e <event> <function>Function` with samconfig.toml's settings; the function's result."""
    from tools.sam_local import SAMCONFIG, sam_environment

    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=STATE_DIR) as event_file:
        json.dump(event, event_file)
        event_file.flush()
        command = [
            str(SAM), "local", "invoke", "--template", str(template), "--config-file", str(SAMCONFIG),
            "--env-vars", str(stack.env_vars_file), "--skip-pull-image", "--event", event_file.name,
            f"{function}Function",
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**sam_environment(), "DOCKER_HOST": stack.docker_host},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    arch = "x86_64" if template == X86_64_TEMPLATE else "arm64"
    # The emulator's REPORT line: the function's own duration within the invoke's (image build, container).
    lambda_report = next((line for line in done.stderr.splitlines() if line.startswith("REPORT ")), "no REPORT line")
    seconds = report(f"sam local invoke {function} ({arch}) [{lambda_report.split(chr(9), 1)[-1].strip()}]", started)
    assert done.returncode == 0, f"{function}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"{function} printed no result\n{done.stderr[-5000:]}"
    return Invocation(json.loads(lines[-1]), done.stderr, seconds)
