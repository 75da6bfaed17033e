"""Section 5: dollars per runner-month, from the MEASURED DynamoDB work per request (section 1).

An idle runner (the common state) heartbeats every `heartbeatIntervalSeconds` and polls every
`pollIntervalSeconds` — the server's Settings, which the agent adopts from the responses. The runner
authorizer's result is cached `ReauthorizeEvery` seconds (template.yaml), so it runs once per TTL per
runner. Every request goes through the WAF web ACL, API Gateway (REST) and one Lambda function.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import prices
from bench.request_calls import (
    ARTIFACT_BYTES,
    ARTIFACT_DECLARED,
    AUTHORIZER_MISS,
    EMPTY_POLL,
    HEARTBEAT,
    JOB_CREATED,
    POLL_WITH_JOB,
    STATUS_COMPLETED,
    STATUS_RUNNING,
    RequestMeasurement,
)
from bench.sweeper_reads import SweepReads

# --- Prices: bench/prices.py, the one table (us-east-1, dated, with sources).
PRICES_AS_OF = prices.PRICES_AS_OF
API_GATEWAY_REST_PER_MILLION = prices.API_GATEWAY_REST.dollars
LAMBDA_ARM_PER_GB_SECOND = prices.LAMBDA_ARM_GB_SECOND.dollars
LAMBDA_PER_MILLION_REQUESTS = prices.LAMBDA_REQUESTS.dollars
DYNAMODB_PER_MILLION_WRU = prices.DYNAMODB_WRU.dollars
DYNAMODB_PER_MILLION_RRU = prices.DYNAMODB_RRU.dollars
WAF_PER_MILLION_REQUESTS = prices.WAF_REQUESTS.dollars
CLOUDWATCH_LOGS_PER_GB_INGESTED = prices.LOGS_INGESTED.dollars
XRAY_PER_MILLION_TRACES_RECORDED = prices.XRAY_TRACES.dollars

# --- Assumptions (what this machine cannot measure).
MONTH_SECONDS = 30 * 24 * 3600
MONTH_DAYS = 30
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives a function one full vCPU at 1,769 MB, proportionally less below
# In-region DynamoDB latency per call as a Lambda sees it (single-digit ms; transactions slower).
DYNAMODB_LATENCY_SECONDS = {"TransactWriteItems": 0.015}
DYNAMODB_DEFAULT_LATENCY_SECONDS = 0.006
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines (with the X-Ray trace id) per invocation
XRAY_SAMPLED_FRACTION = 0.05  # the default sampling rule: 1 request/s reservoir (fleet-wide), then 5 %
SWEEPS_PER_MONTH = MONTH_SECONDS // 60  # rate(1 minute)
# Lambda's SQS event source mapping long-polls an empty queue with 5 pollers, 20 s each (billed requests).
SQS_IDLE_POLLERS = 5
SQS_LONG_POLL_SECONDS = 20
# A typical job (the model's assumptions, beside the measured requests): its log is 64 KiB of scanner output
# sent as 16 chunks of 4 KiB (a job of a few minutes: the agent sends what it has at least every second), it
# leaves one 256 KiB artifact (request_calls.ARTIFACT_BYTES), and the tenant has one webhook (section 8).
JOB_LOG_CHUNK_BYTES = 4096
JOB_LOG_CHUNKS = 16
JOB_WEBHOOKS = 1
# What API Gateway writes per request to the access log (template.yaml's Format), for a runner's poll:
# representative values; a variable API Gateway has no value for is written "-".
ACCESS_LOG_VALUES = {
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "extendedRequestId": "Nq2Xh1vKIAMEfWg=",
    "identity.sourceIp": "203.0.113.10",
    "authorizer.principalId": "01JD6R3W8ZQ4V7N2K5T9XBCM0H",
    "authorizer.principalType": "runner",
    "authorizer.orgId": "acme-corp",
    "identity.apiKeyId": "k2v1x9abcd",
    "requestTime": "02/Dec/2026:02:41:00 +0000",
    "requestTimeEpoch": "1796179260000",
    "httpMethod": "POST",
    "resourcePath": "/api/runners/jobs",
    "status": "200",
    "protocol": "HTTP/1.1",
    "responseLength": "48",
    "responseLatency": "41",
    "integrationLatency": "38",
    "integrationStatus": "200",
    "wafResponseCode": "WAF_ALLOW",
    "xrayTraceId": "1-6567a2f4-0123456789abcdef01234567",
}


@dataclass(frozen=True)
class Workload:
    """What one idle runner does in a month, and what the stack is configured with."""

    heartbeat_interval_seconds: int
    poll_interval_seconds: int
    authorizer_ttl_seconds: int
    memory_mb: dict[str, int]  # function (logical id without "Function") -> MemorySize
    function_log_retention_days: int = 30  # template parameter FunctionLogRetentionDays
    access_log_retention_days: int = 365  # AccessLogRetentionDays
    job_output_retention_days: int = 30  # LogRetentionDays: job logs and artifacts
    access_log_bytes: int = 0  # one access log line (the template's Format, ACCESS_LOG_VALUES)

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


def access_log_line(template: dict[str, Any]) -> str:
    """The access log line the template's Format gives for a runner's poll (ACCESS_LOG_VALUES)."""
    api = next(
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Api" and "AccessLogSetting" in resource["Properties"]
    )
    text = " ".join(str(api["AccessLogSetting"]["Format"]).split())
    return re.sub(r"\$context\.([A-Za-z.]+)", lambda found: ACCESS_LOG_VALUES.get(found.group(1), "-"), text)


def _parameter_default(template: dict[str, Any], name: str) -> int:
    return int(template["Parameters"][name]["Default"])


def workload_from_stack() -> Workload:
    """The agent's intervals from hangar's Settings, the authorizer TTL, memory and retention from template.yaml."""
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
        function_log_retention_days=_parameter_default(template, "FunctionLogRetentionDays"),
        access_log_retention_days=_parameter_default(template, "AccessLogRetentionDays"),
        job_output_retention_days=_parameter_default(template, "LogRetentionDays"),
        access_log_bytes=len(access_log_line(template).encode()),
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

    def add_lines(self, other: CostLines, sign: float = 1.0) -> None:
        for service in other.dollars:
            self.add(service, sign * other.quantities[service], sign * other.dollars[service])

    @property
    def total(self) -> float:
        return sum(self.dollars.values())


API_GATEWAY = "API Gateway REST requests"
WAF = "WAF requests inspected"
LAMBDA_REQUESTS = "Lambda invocations"
LAMBDA_COMPUTE = "Lambda compute (GB-s)"
DYNAMODB_WRITES = "DynamoDB write request units"
DYNAMODB_READS = "DynamoDB read request units"
DYNAMODB_STORAGE = "DynamoDB storage + PITR (GB-months)"
LOGS = "CloudWatch Logs ingested (GB)"
LOGS_STORED = "CloudWatch Logs stored (GB-months)"
XRAY = "X-Ray traces recorded"
SQS = "SQS requests"
EVENTBRIDGE = "EventBridge events"
KMS = "KMS requests (Decrypt)"
S3_REQUESTS = "S3 PUT requests"
S3_STORAGE = "S3 storage (GB-months)"
SERVICES = (
    API_GATEWAY, WAF, LAMBDA_REQUESTS, LAMBDA_COMPUTE, DYNAMODB_WRITES, DYNAMODB_READS, DYNAMODB_STORAGE, LOGS,
    LOGS_STORED, XRAY, SQS, EVENTBRIDGE, KMS, S3_REQUESTS, S3_STORAGE,
)  # fmt: skip


def add_log_bytes(lines: CostLines, gigabytes: float, retention_days: int) -> None:
    """CloudWatch Logs: ingested once, then kept `retention_days` (billed as if stored uncompressed: an upper
    bound, CloudWatch bills the archive's compressed size)."""
    lines.add(LOGS, gigabytes, gigabytes * prices.LOGS_INGESTED.dollars)
    months = gigabytes * retention_days / MONTH_DAYS
    lines.add(LOGS_STORED, months, months * prices.LOGS_STORED.dollars)


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
    add_log_bytes(lines, log_gb, workload.function_log_retention_days)


def add_api_requests(lines: CostLines, request: RequestMeasurement, count: float, workload: Workload) -> None:
    """`count` API requests routed to `request`'s function: WAF, API Gateway (and its access log line), X-Ray
    and the function."""
    lines.add(WAF, count, count * WAF_PER_MILLION_REQUESTS / 1e6)
    lines.add(API_GATEWAY, count, count * API_GATEWAY_REST_PER_MILLION / 1e6)
    add_log_bytes(lines, count * workload.access_log_bytes / 1e9, workload.access_log_retention_days)
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


def thousand_jobs(
    requests: dict[str, RequestMeasurement],
    workload: Workload,
    log_append: RequestMeasurement,
    log_chunk_stored_bytes: float,
    events: CostLines,
) -> dict[str, CostLines]:
    """What 1,000 jobs add, by part of a job's life: its creation; the poll that claims it instead of an empty
    one; its two status reports; its log (JOB_LOG_CHUNKS appends of `log_append`, each chunk item stored
    `log_chunk_stored_bytes` for LogRetentionDays); one artifact (declared through the API, PUT to S3, kept
    LogRetentionDays); its events and webhook deliveries (`events`, section 8's measurement)."""
    jobs = 1000.0
    parts: dict[str, CostLines] = {}
    created = parts["created: POST /v1/jobs"] = CostLines()
    add_api_requests(created, requests[JOB_CREATED], jobs, workload)
    claim = parts["claimed: a poll with a job instead of an empty one"] = CostLines()
    add_invocations(claim, requests[POLL_WITH_JOB], jobs, workload)
    empty = CostLines()
    add_invocations(empty, requests[EMPTY_POLL], jobs, workload)
    claim.add_lines(empty, sign=-1.0)
    reports = parts["status reports: running, completed"] = CostLines()
    add_api_requests(reports, requests[STATUS_RUNNING], jobs, workload)
    add_api_requests(reports, requests[STATUS_COMPLETED], jobs, workload)
    log_kib = JOB_LOG_CHUNKS * JOB_LOG_CHUNK_BYTES // 1024
    months = workload.job_output_retention_days / MONTH_DAYS
    log = parts[f"log: {log_kib} KiB in {JOB_LOG_CHUNKS} chunks, kept {workload.job_output_retention_days} days"] = (
        CostLines()
    )
    add_api_requests(log, log_append, jobs * JOB_LOG_CHUNKS, workload)
    stored = jobs * JOB_LOG_CHUNKS * log_chunk_stored_bytes / 1e9 * months
    log.add(DYNAMODB_STORAGE, stored, stored * (prices.DYNAMODB_STORAGE.dollars + prices.DYNAMODB_PITR.dollars))
    artifact = parts[
        f"artifact: one of {ARTIFACT_BYTES // 1024} KiB, kept {workload.job_output_retention_days} days"
    ] = CostLines()
    add_api_requests(artifact, requests[ARTIFACT_DECLARED], jobs, workload)
    artifact.add(S3_REQUESTS, jobs, jobs * prices.S3_PUT.dollars / 1000)
    s3_months = jobs * ARTIFACT_BYTES / 1e9 * months
    artifact.add(S3_STORAGE, s3_months, s3_months * prices.S3_STANDARD.dollars)
    parts[f"events: stream -> EventBridge -> SQS -> {JOB_WEBHOOKS} webhook"] = events
    return parts


def total_lines(parts: dict[str, CostLines]) -> CostLines:
    total = CostLines()
    for lines in parts.values():
        total.add_lines(lines)
    return total


@dataclass(frozen=True)
class FixedCost:
    item: str
    dollars: float
    source: str  # where the count comes from


def custom_metric_names(root: Path) -> set[str]:
    """Every metric the functions publish with Powertools (EMF; one dimension set, the service)."""
    names: set[str] = set()
    for directory in (root / "layers" / "hangar" / "hangar", root / "functions"):
        for path in directory.rglob("*.py"):
            names.update(re.findall(r"add_metric\(\s*name=\"(\w+)\"", path.read_text()))
    return names


def fixed_monthly_costs(idle_sweep: SweepReads | None, workload: Workload) -> list[FixedCost]:
    """What a deployment pays whatever its fleet, counted from template.yaml and the code: the per-minute
    sweep, the web ACL and its rules, keys, secrets, alarms, dashboards, custom metrics, idle queue polls."""
    from bench.environment import ROOT
    from local.template import functions, load_template

    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [resource.get("Properties", {}) for resource in resources.values() if resource["Type"] == kind]

    costs: list[FixedCost] = []
    if idle_sweep is not None:
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
        costs.append(
            FixedCost(
                f"Sweeper: {SWEEPS_PER_MONTH:,} idle sweeps ({idle_sweep.idle_calls} Queries each)",
                sweep_dollars,
                "section 2's idle sweep, rate(1 minute)",
            )
        )
    acls = of_type("AWS::WAFv2::WebACL")
    rules = sum(len(acl.get("Rules", [])) for acl in acls)
    costs.append(
        FixedCost(
            f"WAF: {len(acls)} web ACL + {rules} rules",
            len(acls) * prices.WAF_WEB_ACL.dollars + rules * prices.WAF_RULE.dollars,
            "AWS::WAFv2::WebACL and its Rules",
        )
    )
    keys = len(of_type("AWS::KMS::Key"))
    costs.append(FixedCost(f"KMS: {keys} customer managed key", keys * prices.KMS_KEY.dollars, "AWS::KMS::Key"))
    secrets = len(of_type("AWS::SecretsManager::Secret"))
    costs.append(
        FixedCost(f"Secrets Manager: {secrets} secret", secrets * prices.SECRET.dollars, "AWS::SecretsManager::Secret")
    )
    alarms = of_type("AWS::CloudWatch::Alarm")
    alarm_metrics = sum(
        sum(1 for query in alarm["Metrics"] if "MetricStat" in query) if "Metrics" in alarm else 1 for alarm in alarms
    )
    costs.append(
        FixedCost(
            f"CloudWatch: {len(alarms)} alarms on {alarm_metrics} metrics",
            alarm_metrics * prices.ALARM_METRIC.dollars,
            "AWS::CloudWatch::Alarm (a metric-math alarm bills each metric it reads)",
        )
    )
    dashboards = len(of_type("AWS::CloudWatch::Dashboard"))
    costs.append(
        FixedCost(
            f"CloudWatch: {dashboards} dashboard", dashboards * prices.DASHBOARD.dollars, "AWS::CloudWatch::Dashboard"
        )
    )
    named = len(custom_metric_names(ROOT))
    filters = len(of_type("AWS::Logs::MetricFilter"))
    # hangar.api.http.lambda_handler captures Powertools' ColdStart metric, with one function_name dimension
    # for every API function (hangar.core.observability): one metric if any function publishes it.
    cold_start = int(
        any("lambda_handler(" in spec.module_file.read_text() for spec in functions(template, ROOT).values())
    )
    metrics = named + filters + cold_start
    costs.append(
        FixedCost(
            f"CloudWatch: {metrics} custom metrics ({named} named, {filters} from log filters, {cold_start} ColdStart)",
            metrics * prices.CUSTOM_METRIC.dollars,
            "metrics.add_metric in the code, AWS::Logs::MetricFilter, API functions",
        )
    )
    queues = sum(
        1
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event.get("Type") == "SQS"
    )
    polls = queues * SQS_IDLE_POLLERS * MONTH_SECONDS / SQS_LONG_POLL_SECONDS
    costs.append(
        FixedCost(
            f"SQS: {queues} queue(s) long-polled by Lambda while empty ({polls:,.0f} requests)",
            polls * prices.SQS_REQUESTS.dollars / 1e6,
            f"SQS event sources; {SQS_IDLE_POLLERS} pollers x one {SQS_LONG_POLL_SECONDS} s poll",
        )
    )
    return costs
