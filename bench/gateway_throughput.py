"""Section 4: the `local/` gateway under 8 concurrent agents' heartbeats, against calling the handler directly.

`local.testing.start_local_api()` runs `python -m local serve` as a subprocess (limits off: the per-runner
120/min WAF rule would otherwise be what is measured). Each client is a thread with its own runner and one
keep-alive HTTP/1.1 connection (http.client), heartbeating as fast as it can for a fixed time; a client
whose connection was closed by the server counts it (`reconnects`), so keep-alive is measured too. The
baseline is the same heartbeat handler called in-process against moto, one call after another.
Targets (issue 12): at least 200 heartbeats/s with 8 clients, p99 at most 50 ms, one client alone p50 at
most 15 ms.

Where the time goes: the CPU each process spends per heartbeat (the gateway, its backend, the clients; from
/proc on Linux) gives the ceilings the throughput cannot pass: the moto backend serves one request at a time
(local/backend.py), so 1 / its CPU per heartbeat; the gateway is one interpreter, so 1 / its CPU; and all of
them share the cores. With DynamoDB Local installed (`make install-dynamodb-local`) the same load runs a
second time with the tables there (HANGAR_DYNAMODB_ENDPOINT), so the figures show what local/ serves when
moto is not the floor.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support import start_aws_stack

from bench.request_calls import RunnerSession, function_output

CLIENTS = 8
MEASURE_SECONDS = 8.0
WARM_UP_REQUESTS = 5  # per client: the authorizer's cache miss and the handler's import happen here
TARGET_PER_SECOND = 200.0
TARGET_P99_SECONDS = 0.050
TARGET_ALONE_P50_SECONDS = 0.015
DIRECT_CALLS = 200
SEQUENTIAL_REQUESTS = 200
HEARTBEAT_PATH = "/api/runners/heartbeat"


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    reconnects: int = 0
    finished_at: float = 0.0


@dataclass(frozen=True)
class CpuPerHeartbeat:
    """CPU seconds each process spent per heartbeat during the 8-client run."""

    gateway: float
    backend: float
    clients: float
    backend_name: str  # "moto" or "DynamoDB Local"
    backend_serial: bool  # moto serves one request at a time; DynamoDB Local does not
    cores: int

    def ceilings(self) -> dict[str, float]:
        """Heartbeats/s each resource allows on its own: no run can pass the smallest."""
        ceilings = {
            "the gateway's interpreter (one GIL)": 1 / self.gateway,
            f"{self.cores} cores shared by all three": self.cores / (self.gateway + self.backend + self.clients),
        }
        if self.backend_serial:
            ceilings[f"{self.backend_name}, one request at a time"] = 1 / self.backend
        return ceilings

    def note(self) -> str:
        spent = (
            f"gateway process {self.gateway * 1000:.1f} ms, {self.backend_name} {self.backend * 1000:.1f} ms, "
            f"clients {self.clients * 1000:.1f} ms"
        )
        ceilings = "; ".join(f"{name} {rate:.0f}/s" for name, rate in sorted(self.ceilings().items(), key=_rate))
        return f"CPU per heartbeat: {spent}. Ceilings: {ceilings}."


def _rate(item: tuple[str, float]) -> float:
    return item[1]


@dataclass(frozen=True)
class LoadRun:
    """One gateway under the clients' load, and one client alone before it."""

    requests: int
    failures: int
    seconds: float
    p50_seconds: float
    p99_seconds: float
    sequential_p50_seconds: float
    reconnects: int
    startup_seconds: float
    cpu: CpuPerHeartbeat | None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def verdicts(self, clients: int) -> str:
        return target_verdicts(self.per_second, self.p99_seconds, self.sequential_p50_seconds, clients)

    def summary(self, clients: int) -> str:
        return (
            f"{self.per_second:.0f}/s with {clients} clients, p50 {self.p50_seconds * 1000:.1f} ms,"
            f" p99 {self.p99_seconds * 1000:.1f} ms, one client alone p50 {self.sequential_p50_seconds * 1000:.1f} ms;"
            f" {self.failures} not 200, {self.reconnects} connections closed by the server"
        )


@dataclass(frozen=True)
class GatewayThroughput:
    clients: int
    requests: int
    failures: int
    seconds: float
    p50_seconds: float
    p99_seconds: float
    sequential_p50_seconds: float  # one client alone
    direct_call_seconds: float  # median of in-process handler calls
    startup_seconds: float
    reconnects: int = 0  # connections the server closed during the measurement (0: keep-alive held)
    cpu: CpuPerHeartbeat | None = None
    dynamodb_local: LoadRun | None = None  # the same load with the tables on DynamoDB Local
    dynamodb_local_missing: str = ""  # why there is no such run

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def direct_per_second(self) -> float:
        """The baseline's throughput: one thread calling the handler in-process, back to back."""
        return 1 / self.direct_call_seconds

    @property
    def service_time_overhead(self) -> float:
        """Gateway time per request at full load (1 / throughput) per direct in-process call."""
        return (1 / self.per_second) / self.direct_call_seconds

    def target_notes(self) -> list[str]:
        """The targets' verdicts, the CPU arithmetic behind them, and the DynamoDB Local run."""
        verdicts = target_verdicts(self.per_second, self.p99_seconds, self.sequential_p50_seconds, self.clients)
        notes = [f"Targets: {verdicts}; {self.reconnects} connections closed by the server (0: keep-alive held)."]
        if self.cpu is not None:
            notes.append(self.cpu.note())
        local = self.dynamodb_local
        if local is None:
            notes.append(f"No run with DynamoDB Local: {self.dynamodb_local_missing}.")
            return notes
        notes.append(
            "The same load with the tables on DynamoDB Local (HANGAR_DYNAMODB_ENDPOINT; moto keeps S3, KMS, ...): "
            f"{local.summary(self.clients)}. Targets: {local.verdicts(self.clients)}."
        )
        if local.cpu is not None:
            notes.append(f"With DynamoDB Local: {local.cpu.note()}")
        return notes


def target_verdicts(per_second: float, p99_seconds: float, alone_p50_seconds: float, clients: int) -> str:
    checks = [
        (f">= {TARGET_PER_SECOND:.0f}/s with {clients} clients", per_second >= TARGET_PER_SECOND),
        (f"p99 <= {TARGET_P99_SECONDS * 1000:.0f} ms", p99_seconds <= TARGET_P99_SECONDS),
        (f"one client p50 <= {TARGET_ALONE_P50_SECONDS * 1000:.0f} ms", alone_p50_seconds <= TARGET_ALONE_P50_SECONDS),
    ]
    return "; ".join(f"{text}: {'met' if met else 'MISSED'}" for text, met in checks)


def process_cpu_seconds(pids: Sequence[int], proc: Path = Path("/proc")) -> float | None:
    """User + system CPU of these processes (all their threads) so far; None where /proc cannot say."""
    total = 0.0
    for pid in pids:
        try:
            fields = (proc / str(pid) / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
    return total


class CpuMeter:
    """CPU spent from now on by the gateway's process, its backend's and this one (the clients)."""

    def __init__(self, gateway_pid: int, backend_pids: list[int]) -> None:
        self.gateway_pid, self.backend_pids = gateway_pid, backend_pids
        self.gateway = process_cpu_seconds([gateway_pid])
        self.backend = process_cpu_seconds(backend_pids) if backend_pids else None
        self.clients = time.process_time()

    def per_heartbeat(self, heartbeats: int, backend_name: str, serial: bool) -> CpuPerHeartbeat | None:
        gateway, backend = process_cpu_seconds([self.gateway_pid]), process_cpu_seconds(self.backend_pids)
        if None in (self.gateway, self.backend, gateway, backend) or not heartbeats:
            return None
        return CpuPerHeartbeat(
            gateway=(gateway - self.gateway) / heartbeats,  # type: ignore[operator]
            backend=(backend - self.backend) / heartbeats,  # type: ignore[operator]
            clients=(time.process_time() - self.clients) / heartbeats,
            backend_name=backend_name,
            backend_serial=serial,
            cores=os.cpu_count() or 1,
        )


def child_pids(parent: int, proc: Path = Path("/proc")) -> list[int]:
    """The processes whose parent is `parent` (the gateway's backend), from /proc; [] where there is none."""
    children = []
    for entry in proc.glob("[0-9]*/stat"):
        try:
            ppid = int(entry.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            children.append(int(entry.parent.name))
    return children


def heartbeat_body() -> bytes:
    from hangar_agent import __version__
    from hangar_agent.agent import system_info

    report = {"status": "online", "version": __version__, "configuredConcurrency": 1, "systemInfo": system_info()}
    return json.dumps(report).encode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_direct_heartbeat_seconds(calls: int = DIRECT_CALLS) -> float:
    """Median time of one heartbeat handler call in-process (moto in-process), warm."""
    with start_aws_stack(), function_output():
        runner = RunnerSession()
        for _ in range(WARM_UP_REQUESTS):
            runner.heartbeat()
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            runner.heartbeat()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


class HeartbeatClient:
    """One agent's keep-alive connection to the gateway, sending the agent's heartbeat."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self.path = parts.path.rstrip("/") + HEARTBEAT_PATH
        self.headers = {"X-Runner-Token": token, "Content-Type": "application/json"}
        self.body = heartbeat_body()

    def send(self) -> tuple[int, float, bool]:
        """(status, seconds, whether the server closed the connection) of one heartbeat."""
        started = time.perf_counter()
        self.connection.request("POST", self.path, body=self.body, headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started, response.will_close

    def close(self) -> None:
        self.connection.close()


def _heartbeat_until(
    client: HeartbeatClient, start: threading.Barrier, stop_at: list[float], result: ClientResult
) -> None:
    """One agent under load: warm up, wait for the others, then heartbeat until the shared stop time."""
    try:
        for _ in range(WARM_UP_REQUESTS):
            client.send()
        start.wait()
        while time.perf_counter() < stop_at[0]:
            status, latency, closed = client.send()
            result.latencies.append(latency)
            result.failures += int(status != 200)
            result.reconnects += int(closed)
        result.finished_at = time.perf_counter()
    finally:
        client.close()


def sequential_latencies(client: HeartbeatClient, count: int = SEQUENTIAL_REQUESTS) -> list[float]:
    """One agent alone: its latencies (no queueing behind other clients)."""
    for _ in range(WARM_UP_REQUESTS):
        client.send()
    latencies = []
    for _ in range(count):
        status, latency, _ = client.send()
        if status != 200:
            raise RuntimeError(f"heartbeat through the gateway answered {status}")
        latencies.append(latency)
    return latencies


def measure_gateway_heartbeats(clients: int = CLIENTS, seconds: float = MEASURE_SECONDS) -> GatewayThroughput:
    """Heartbeats per second and latency through `python -m local` (moto backend), the same with the tables
    on DynamoDB Local when it is installed, and the direct in-process baseline."""
    from local.testing import start_local_api

    direct = measure_direct_heartbeat_seconds()
    with start_local_api(extra_env={"HANGAR_LOCAL_LIMITS": "off"}) as api:
        moto = load_run(api, clients, seconds, child_pids(api.process.pid), "moto", serial=True)
    with dynamodb_local() as (endpoint, java_pid, missing):
        local = None
        if endpoint:
            env = {"HANGAR_LOCAL_LIMITS": "off", "HANGAR_DYNAMODB_ENDPOINT": endpoint}
            with start_local_api(extra_env=env) as api:
                local = load_run(api, clients, seconds, [java_pid], "DynamoDB Local", serial=False)
    return GatewayThroughput(
        clients=clients,
        requests=moto.requests,
        failures=moto.failures,
        seconds=moto.seconds,
        p50_seconds=moto.p50_seconds,
        p99_seconds=moto.p99_seconds,
        sequential_p50_seconds=moto.sequential_p50_seconds,
        direct_call_seconds=direct,
        startup_seconds=moto.startup_seconds,
        reconnects=moto.reconnects,
        cpu=moto.cpu,
        dynamodb_local=local,
        dynamodb_local_missing=missing,
    )


@contextmanager
def dynamodb_local() -> Iterator[tuple[str, int, str]]:
    """(endpoint, its java process id, "") of a fresh DynamoDB Local, or ("", 0, why there is none)."""
    from local.testing import DYNAMODB_LOCAL_DIR, start_dynamodb_local

    if not (DYNAMODB_LOCAL_DIR / "DynamoDBLocal.jar").is_file() or shutil.which("java") is None:
        yield "", 0, "not installed (make install-dynamodb-local, and java)"
        return
    try:
        server = start_dynamodb_local()
    except RuntimeError as error:  # the section's main figures stand without it
        yield "", 0, f"it did not start ({str(error).splitlines()[0]})"
        return
    try:
        yield server.endpoint, server.process.pid, ""
    finally:
        server.stop()


def load_run(api: Any, clients: int, seconds: float, backend_pids: list[int], backend: str, serial: bool) -> LoadRun:
    """One client alone, then `clients` at once for `seconds`, against a running `python -m local serve`."""
    from local.testing import unique_org

    org = unique_org("bench")
    licensed = api.call(
        "PUT", f"/v1/orgs/{org}/license", token=api.jwt("operators", "admin:licenses"), json={"plan": "enterprise"}
    )
    if licensed.status != 200:
        raise RuntimeError(f"license: {licensed.status} {licensed.body}")
    tokens = []
    for index in range(clients):
        created = api.call(
            "POST", "/api/runners", token=api.jwt(org, "runners:manage"), json={"name": f"bench-{index}"}
        )
        if created.status != 201:
            raise RuntimeError(f"create runner: {created.status} {created.body}")
        tokens.append(str(created.body["data"]["token"]))
    lone_client = HeartbeatClient(api.url, tokens[0])
    try:
        alone = sequential_latencies(lone_client)
    finally:
        lone_client.close()
    start = threading.Barrier(clients + 1)
    stop_at = [float("inf")]
    results = [ClientResult() for _ in range(clients)]
    threads = [
        threading.Thread(
            target=_heartbeat_until, args=(HeartbeatClient(api.url, token), start, stop_at, result), daemon=True
        )
        for token, result in zip(tokens, results, strict=True)
    ]
    for thread in threads:
        thread.start()
    start.wait()  # the clients have warmed up: only the measured heartbeats are in the CPU figures
    meter = CpuMeter(api.process.pid, backend_pids)
    started = time.perf_counter()
    stop_at[0] = started + seconds
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = max(result.finished_at for result in results) - started
    latencies = [latency for result in results for latency in result.latencies]
    return LoadRun(
        requests=len(latencies),
        failures=sum(result.failures for result in results),
        seconds=elapsed,
        p50_seconds=percentile(latencies, 0.50),
        p99_seconds=percentile(latencies, 0.99),
        sequential_p50_seconds=statistics.median(alone),
        reconnects=sum(result.reconnects for result in results),
        startup_seconds=api.startup_seconds,
        cpu=meter.per_heartbeat(len(latencies), backend, serial),
    )
