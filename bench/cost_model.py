"""Section 5: dollars per runner-month, from the MEASURED DynamoDB work per request (section 1).

An idle runner (the common state) heartbeats every `heartbeatIntervalSeconds` and polls every
`pollIntervalSeconds` — the server's Settings, which the agent adopts from the responses. The runner
authorizer's result is cached `ReauthorizeEvery` seconds (template.yaml), so it runs once per TTL per
runner. Every request goes through the WAF web ACL, API Gateway (REST) and one Lambda function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.request_calls import (
    AUTHORIZER_MISS,
    EMPTY_POLL,
    HEARTBEAT,
    POLL_WITH_JOB,
    STATUS_COMPLETED,
    STATUS_RUNNING,
    RequestMeasurement,
)
from bench.sweeper_reads import SweepReads

# --- Prices: AWS's published list prices, us-east-1, as of November 2024 (DynamoDB on-demand after its
# 1 November 2024 reduction). Free tiers are ignored. Check aws.amazon.com/<service>/pricing before use.
PRICES_AS_OF = "November 2024"
API_GATEWAY_REST_PER_MILLION = 3.50  # first 333 million requests a month
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
DYNAMODB_PER_MILLION_WRU = 0.625
DYNAMODB_PER_MILLION_RRU = 0.125
WAF_PER_MILLION_REQUESTS = 0.60
WAF_WEB_ACL_PER_MONTH = 5.00
WAF_RULE_PER_MONTH = 1.00
CLOUDWATCH_LOGS_PER_GB_INGESTED = 0.50
XRAY_PER_MILLION_TRACES_RECORDED = 5.00
SECRETS_MANAGER_PER_SECRET_MONTH = 0.40
KMS_PER_KEY_MONTH = 1.00

# --- Assumptions (what this machine cannot measure).
MONTH_SECONDS = 30 * 24 * 3600
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives a function one full vCPU at 1,769 MB, proportionally less below
# In-region DynamoDB latency per call as a Lambda sees it (single-digit ms; transactions slower).
DYNAMODB_LATENCY_SECONDS = {"TransactWriteItems": 0.015}
DYNAMODB_DEFAULT_LATENCY_SECONDS = 0.006
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines (with the X-Ray trace id) per invocation
XRAY_SAMPLED_FRACTION = 0.05  # the default sampling rule: 1 request/s reservoir (fleet-wide), then 5 %
SWEEPS_PER_MONTH = MONTH_SECONDS // 60  # rate(1 minute)
WAF_RULES = 2  # per-runner and per-IP rate rules in ApiWebAcl


@dataclass(frozen=True)
class Workload:
    """What one idle runner does in a month, and what the stack is configured with."""

    heartbeat_interval_seconds: int
    poll_interval_seconds: int
    authorizer_ttl_seconds: int
    memory_mb: dict[str, int]  # function (logical id without "Function") -> MemorySize

    @property
    def heartbeats(self) -> float:
        return MONTH_SECONDS / self.heartbeat_interval_seconds

    @property
    def polls(self) -> float:
        return MONTH_SECONDS / self.poll_interval_seconds

    @property
    def authorizer_runs(self) -> float:
        """One cache miss per TTL: the agent calls far more often than the TTL, with the same token."""
        return MONTH_SECONDS / self.authorizer_ttl_seconds


def workload_from_stack() -> Workload:
    """The agent's intervals from hangar's Settings, the authorizer TTL and memory from template.yaml."""
    from hangar.core.config import get_settings

    from bench.environment import ROOT
    from local.template import authorizers, functions, load_template

    template = load_template(ROOT / "template.yaml")
    settings = get_settings()
    return Workload(
        heartbeat_interval_seconds=settings.heartbeat_interval_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
        authorizer_ttl_seconds=authorizers(template)["RunnerTokenAuthorizer"].ttl_seconds,
        memory_mb={
            logical_id.removesuffix("Function"): spec.memory_size
            for logical_id, spec in functions(template, ROOT).items()
        },
    )


def modelled_duration_seconds(python_seconds: float, operations: list[str], memory_mb: int) -> float:
    """A warm invocation in Lambda: the handler's Python time scaled to the function's CPU share, plus
    in-region DynamoDB latency per call; billed in whole milliseconds."""
    cpu_share = min(1.0, memory_mb / LAMBDA_FULL_VCPU_MB)
    latency = sum(DYNAMODB_LATENCY_SECONDS.get(op, DYNAMODB_DEFAULT_LATENCY_SECONDS) for op in operations)
    return math.ceil((python_seconds / cpu_share + latency) * 1000) / 1000


@dataclass
class CostLines:
    """Dollars by service for some number of requests."""

    dollars: dict[str, float] = field(default_factory=dict)
    quantities: dict[str, float] = field(default_factory=dict)

    def add(self, service: str, quantity: float, dollars: float) -> None:
        self.dollars[service] = self.dollars.get(service, 0.0) + dollars
        self.quantities[service] = self.quantities.get(service, 0.0) + quantity

    @property
    def total(self) -> float:
        return sum(self.dollars.values())


API_GATEWAY = "API Gateway REST requests"
WAF = "WAF requests inspected"
LAMBDA_REQUESTS = "Lambda invocations"
LAMBDA_COMPUTE = "Lambda compute (GB-s)"
DYNAMODB_WRITES = "DynamoDB write request units"
DYNAMODB_READS = "DynamoDB read request units"
LOGS = "CloudWatch Logs ingested (GB)"
XRAY = "X-Ray traces recorded"
SERVICES = (API_GATEWAY, WAF, LAMBDA_REQUESTS, LAMBDA_COMPUTE, DYNAMODB_WRITES, DYNAMODB_READS, LOGS, XRAY)


def invocation_seconds(request: RequestMeasurement, workload: Workload) -> float:
    operations = request.operations.split(" + ") if request.operations else []
    return modelled_duration_seconds(request.python_seconds, operations, workload.memory_mb[request.function])


def add_invocations(lines: CostLines, request: RequestMeasurement, count: float, workload: Workload) -> None:
    """`count` Lambda invocations of `request`'s function with its measured DynamoDB work."""
    memory_gb = workload.memory_mb[request.function] / 1024
    gb_seconds = count * invocation_seconds(request, workload) * memory_gb
    lines.add(LAMBDA_REQUESTS, count, count * LAMBDA_PER_MILLION_REQUESTS / 1e6)
    lines.add(LAMBDA_COMPUTE, gb_seconds, gb_seconds * LAMBDA_ARM_PER_GB_SECOND)
    write_units = count * request.total_write_units
    read_units = count * request.read_units
    lines.add(DYNAMODB_WRITES, write_units, write_units * DYNAMODB_PER_MILLION_WRU / 1e6)
    lines.add(DYNAMODB_READS, read_units, read_units * DYNAMODB_PER_MILLION_RRU / 1e6)
    log_gb = count * (request.log_bytes + LAMBDA_PLATFORM_LOG_BYTES) / 1e9
    lines.add(LOGS, log_gb, log_gb * CLOUDWATCH_LOGS_PER_GB_INGESTED)


def add_api_requests(lines: CostLines, request: RequestMeasurement, count: float, workload: Workload) -> None:
    """`count` API requests routed to `request`'s function: WAF, API Gateway, X-Ray and the function."""
    lines.add(WAF, count, count * WAF_PER_MILLION_REQUESTS / 1e6)
    lines.add(API_GATEWAY, count, count * API_GATEWAY_REST_PER_MILLION / 1e6)
    traces = count * XRAY_SAMPLED_FRACTION
    lines.add(XRAY, traces, traces * XRAY_PER_MILLION_TRACES_RECORDED / 1e6)
    add_invocations(lines, request, count, workload)


def idle_runner_month(requests: dict[str, RequestMeasurement], workload: Workload) -> CostLines:
    """One idle runner for a month: heartbeats, empty polls, and the authorizer once per cache TTL."""
    lines = CostLines()
    add_api_requests(lines, requests[HEARTBEAT], workload.heartbeats, workload)
    add_api_requests(lines, requests[EMPTY_POLL], workload.polls, workload)
    add_invocations(lines, requests[AUTHORIZER_MISS], workload.authorizer_runs, workload)
    return lines


def thousand_jobs(requests: dict[str, RequestMeasurement], workload: Workload) -> CostLines:
    """What 1,000 jobs add: each turns one empty poll into a claiming one and reports running and done."""
    jobs = 1000.0
    lines = CostLines()
    claim, empty = requests[POLL_WITH_JOB], requests[EMPTY_POLL]
    with_job, without = CostLines(), CostLines()
    add_invocations(with_job, claim, jobs, workload)
    add_invocations(without, empty, jobs, workload)
    for service in with_job.dollars:
        lines.add(
            service,
            with_job.quantities[service] - without.quantities[service],
            with_job.dollars[service] - without.dollars[service],
        )
    add_api_requests(lines, requests[STATUS_RUNNING], jobs, workload)
    add_api_requests(lines, requests[STATUS_COMPLETED], jobs, workload)
    return lines


@dataclass(frozen=True)
class FixedCost:
    item: str
    dollars: float


def fixed_monthly_costs(idle_sweep: SweepReads, workload: Workload) -> list[FixedCost]:
    """What a deployment pays whatever its fleet: the per-minute sweep, the web ACL, the secret and key."""
    sweep_python = max(0.0, idle_sweep.idle_seconds - idle_sweep.idle_dynamodb_seconds)
    sweep_seconds = modelled_duration_seconds(
        sweep_python, ["Query"] * idle_sweep.idle_calls, workload.memory_mb["Sweeper"]
    )
    sweep_gb_seconds = SWEEPS_PER_MONTH * sweep_seconds * workload.memory_mb["Sweeper"] / 1024
    sweep_dollars = (
        SWEEPS_PER_MONTH * LAMBDA_PER_MILLION_REQUESTS / 1e6
        + sweep_gb_seconds * LAMBDA_ARM_PER_GB_SECOND
        + SWEEPS_PER_MONTH * idle_sweep.idle_read_units * DYNAMODB_PER_MILLION_RRU / 1e6
        + SWEEPS_PER_MONTH * LAMBDA_PLATFORM_LOG_BYTES / 1e9 * CLOUDWATCH_LOGS_PER_GB_INGESTED
    )
    return [
        FixedCost(f"Sweeper: {SWEEPS_PER_MONTH:,} idle sweeps ({idle_sweep.idle_calls} Queries each)", sweep_dollars),
        FixedCost(f"WAF web ACL + {WAF_RULES} rules", WAF_WEB_ACL_PER_MONTH + WAF_RULES * WAF_RULE_PER_MONTH),
        FixedCost("Secrets Manager: token pepper", SECRETS_MANAGER_PER_SECRET_MONTH),
        FixedCost("KMS: setup-token key", KMS_PER_KEY_MONTH),
    ]
