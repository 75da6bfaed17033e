"""What the sam local tests share besides their fixtures (tests/sam_local/conftest.py): paths, the stack
and fleet records, the events/ fixtures filled in with real ids, and `sam local invoke`. Test modules
import these from here, never from `conftest` (pytest keeps one module of that name at a time).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
