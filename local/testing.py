"""Driving a real `python -m local` from tests: start it as a subprocess, call it over HTTP, stop it.

Used by tests/e2e/conftest.py (the `local_api` fixture) and usable from benchmarks or scripts:

    with start_local_api() as api:
        status, headers, body = api.call("GET", "/api/runners", token=api.jwt("acme", "runners:read"))

With HANGAR_TEST_DYNAMODB_ENDPOINT set (tests/e2e/conftest.py sets it when it runs the suite on AWS's
DynamoDB Local, `start_dynamodb_local()`), every server started here uses that DynamoDB with tables of
its own (`HANGAR_TABLE_PREFIX`), so servers never share state. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from local import REPO_ROOT
from local.devtokens import ALL_SCOPES, mint_dev_jwt

READY_RE = re.compile(r"Hangar local API ready on (http://\S+)")
DYNAMODB_RE = re.compile(r"DynamoDB endpoint:\s+(http://\S+)")


class HttpResult(NamedTuple):
    """(status, headers, body): headers look-ups are case-insensitive; body is JSON when it parses."""

    status: int
    headers: Message
    body: Any


def http_call(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    body: str | bytes | None = None,
    timeout: float = 30,
) -> HttpResult:
    """One HTTP request; never raises for an HTTP status (only for a connection failure)."""
    data: bytes | None = None
    sent_headers = dict(headers or {})
    if json is not None:
        data = jsonlib.dumps(json).encode()
        sent_headers.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method.upper(), headers=sent_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, response_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, response_headers, raw = error.code, error.headers, error.read()
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = text
    if text:
        try:
            parsed = jsonlib.loads(text)
        except ValueError:
            parsed = text
    else:
        parsed = None
    return HttpResult(status, response_headers, parsed)


def unique_org(prefix: str = "org") -> str:
    """An org id no other test uses (so tests sharing one server never see each other's data)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


RUNNING: list[LocalApi] = []
"""Every server `start_local_api` started that has not been stopped (tests attach their output on failure)."""


class LocalApi:
    """A running `python -m local serve` subprocess."""

    def __init__(self, process: subprocess.Popen[bytes], table_prefix: str = "") -> None:
        self.process = process
        self.table_prefix = table_prefix
        self.url = ""
        self.dynamodb_endpoint = ""
        self.startup_seconds = 0.0
        self._clock_offset = 0.0  # the server's clock minus ours, as the last advance_clock left it
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name="local-api-output", daemon=True)
        self._reader.start()

    # -- output ------------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            if not self.dynamodb_endpoint and (match := DYNAMODB_RE.search(line)):
                self.dynamodb_endpoint = match.group(1)
            if not self.url and (match := READY_RE.search(line)):
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()  # the process ended: whoever waits must look

    def output_mark(self) -> int:
        with self._lock:
            return len(self._lines)

    def output(self, since: int = 0) -> str:
        """The server's combined stdout/stderr (from line `since`)."""
        with self._lock:
            return "\n".join(self._lines[since:])

    def wait_ready(self, timeout: float = 60) -> None:
        if not self._ready.wait(timeout) or not self.url:
            code = self.process.poll()
            self.stop()
            state = f"exited with {code}" if code is not None else f"not ready after {timeout:.0f} s"
            raise RuntimeError(f"python -m local {state}; its output:\n{self.output()}")

    def table(self, logical_id: str) -> str:
        """The name of a template table (e.g. "TokensTable") in this server's DynamoDB."""
        return self.table_prefix + logical_id

    # -- calls -------------------------------------------------------------------------------------

    def jwt(self, org: str, scopes: str | Iterable[str] = ALL_SCOPES, sub: str | None = None, ttl: int = 86400) -> str:
        """A JWT the local user authorizer accepts (see `local.devtokens.mint_dev_jwt`)."""
        return mint_dev_jwt(org, scopes, sub=sub, ttl=ttl, now=time.time() + self._clock_offset)

    def call(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: str | bytes | None = None,
        token: str | None = None,
        api_key: str | None = None,
        runner_token: str | None = None,
        timeout: float = 30,
    ) -> HttpResult:
        """METHOD url+path, with `Authorization: Bearer token`, `X-API-Key` or `X-Runner-Token` if given."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if api_key:
            sent["X-API-Key"] = api_key
        if runner_token:
            sent["X-Runner-Token"] = runner_token
        return http_call(method, self.url + path, headers=sent, json=json, body=body, timeout=timeout)

    def advance_clock(self, seconds: float) -> float:
        """Move the server's clock (handlers, authorizer cache, limits) forward; the new time."""
        result = self.call("POST", "/_local/clock", json={"advanceSeconds": seconds})
        if result.status != 200:
            raise RuntimeError(f"advance_clock: {result.status} {result.body}")
        now = float(result.body["now"])
        self._clock_offset = now - time.time()  # tokens minted from now on are valid on the server's clock
        return now

    def now(self) -> float:
        return float(self.call("GET", "/_local/clock").body["now"])

    def flush_deliveries(self) -> int:
        """Run the stream processor and every webhook delivery due now (on the local clock), synchronously;
        how many stream records and queue messages were handled."""
        result = self.call("POST", "/_local/deliveries/flush", timeout=300)
        if result.status != 200:
            raise RuntimeError(f"flush_deliveries: {result.status} {result.body}")
        return int(result.body["handled"])

    def run_schedule(self, logical_id: str) -> Any:
        """Run a scheduled function (e.g. "SweeperFunction") once, synchronously; its result."""
        result = self.call("POST", f"/_local/schedules/{logical_id}", timeout=180)
        if result.status != 200:
            raise RuntimeError(f"run_schedule({logical_id}): {result.status} {result.body}")
        return result.body

    def flush_authorizer_cache(self) -> int:
        return int(self.call("POST", "/_local/authorizer-cache/flush").body["flushed"])

    # -- lifetime ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; its exit code."""
        if self in RUNNING:
            RUNNING.remove(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode

    def __enter__(self) -> LocalApi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def start_local_api(
    extra_env: Mapping[str, str] | None = None,
    args: Iterable[str] = (),
    timeout: float = 60,
) -> LocalApi:
    """Start `python -m local serve --port 0 --backend-port 0` (schedules off) and wait for its ready line."""
    env = dict(os.environ)
    env.update({"HANGAR_LOCAL_SCHEDULES": "off", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    for name in ("PORT", "HANGAR_BACKEND_PORT", "HANGAR_DYNAMODB_ENDPOINT", "HANGAR_TABLE_PREFIX", "HANGAR_LOCAL_LOG"):
        env.pop(name, None)
    if os.environ.get(TEST_DYNAMODB_VARIABLE):
        env["HANGAR_DYNAMODB_ENDPOINT"] = os.environ[TEST_DYNAMODB_VARIABLE]
        env["HANGAR_TABLE_PREFIX"] = f"e2e-{uuid.uuid4().hex[:10]}-"
    env.update(extra_env or {})
    pythonpath = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", "0", "--backend-port", "0", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    api = LocalApi(process, env.get("HANGAR_TABLE_PREFIX", ""))
    RUNNING.append(api)
    started = time.monotonic()
    api.wait_ready(timeout)
    api.startup_seconds = time.monotonic() - started
    return api


TEST_DYNAMODB_VARIABLE = "HANGAR_TEST_DYNAMODB_ENDPOINT"
DYNAMODB_LOCAL_DIR = REPO_ROOT / ".tools" / "dynamodb-local" / "package" / "emulator"
"""DynamoDB Local's jar, from the npm package amplify-dynamodb-simulator (`make install-dynamodb-local`)."""


class DynamoDBLocal:
    """AWS's DynamoDB Local (in memory, one database for every credential) on a free port."""

    def __init__(self, process: subprocess.Popen[bytes], endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_dynamodb_local(directory: Path = DYNAMODB_LOCAL_DIR, timeout: float = 120) -> DynamoDBLocal:
    """Start DynamoDB Local and wait until it answers; raises with its output if it does not."""
    jar = directory / "DynamoDBLocal.jar"
    if not jar.is_file():
        raise RuntimeError(f"{jar} is missing: run `make install-dynamodb-local`")
    with socket.socket() as probe:  # a free port (DynamoDB Local cannot pick one itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["java", f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
    output = tempfile.TemporaryFile()  # noqa: SIM115 - read below if it fails; a pipe nobody reads could fill
    process = subprocess.Popen(
        [*command, "-inMemory", "-sharedDb", "-port", str(port)],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            http_call("GET", endpoint, timeout=2)  # any HTTP answer (DynamoDB Local says 400) means it is up
            return DynamoDBLocal(process, endpoint)
        except OSError:
            time.sleep(0.2)
    process.kill()
    process.wait(10)
    output.seek(0)
    raise RuntimeError(f"DynamoDB Local did not start on {endpoint}; its output:\n{output.read().decode()}")
