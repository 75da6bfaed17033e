"""Section 4: the `local/` gateway under 8 concurrent agents' heartbeats, against calling the handler directly.

`local.testing.start_local_api()` runs `python -m local serve` as a subprocess (limits off: the per-runner
120/min WAF rule would otherwise be what is measured). Each client is a thread with its own runner and one
keep-alive HTTP/1.1 connection (http.client), heartbeating as fast as it can for a fixed time; a client
whose connection was closed by the server counts it (`reconnects`), so keep-alive is measured too. The
baseline is the same heartbeat handler called in-process against moto, one call after another.
Targets (issue 12): at least 200 heartbeats/s with 8 clients, p99 at most 50 ms, one client alone p50 at
most 15 ms.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
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
        checks = [
            (f">= {TARGET_PER_SECOND:.0f}/s with {self.clients} clients", self.per_second >= TARGET_PER_SECOND),
            (f"p99 <= {TARGET_P99_SECONDS * 1000:.0f} ms", self.p99_seconds <= TARGET_P99_SECONDS),
            (
                f"one client p50 <= {TARGET_ALONE_P50_SECONDS * 1000:.0f} ms",
                self.sequential_p50_seconds <= TARGET_ALONE_P50_SECONDS,
            ),
        ]
        verdicts = "; ".join(f"{text}: {'met' if met else 'MISSED'}" for text, met in checks)
        return [f"Targets: {verdicts}; {self.reconnects} connections closed by the server (0: keep-alive held)."]


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
    """Heartbeats per second and latency through `python -m local`, and the direct in-process baseline."""
    from local.testing import start_local_api, unique_org

    direct = measure_direct_heartbeat_seconds()
    with start_local_api(extra_env={"HANGAR_LOCAL_LIMITS": "off"}) as api:
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
        start.wait()
        started = time.perf_counter()
        stop_at[0] = started + seconds
        for thread in threads:
            thread.join(seconds + 120)
        elapsed = max(result.finished_at for result in results) - started
        startup = api.startup_seconds
    latencies = [latency for result in results for latency in result.latencies]
    return GatewayThroughput(
        clients=clients,
        requests=len(latencies),
        failures=sum(result.failures for result in results),
        seconds=elapsed,
        p50_seconds=percentile(latencies, 0.50),
        p99_seconds=percentile(latencies, 0.99),
        sequential_p50_seconds=statistics.median(alone),
        direct_call_seconds=direct,
        startup_seconds=startup,
        reconnects=sum(result.reconnects for result in results),
    )
