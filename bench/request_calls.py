"""Section 1: DynamoDB calls (and request units, handler time, log bytes) per runner-route request.

The real handlers run in-process against moto, with tables built from template.yaml
(`support.start_aws_stack`); every DynamoDB call they make is counted (`DynamoRecorder`).
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

from support import (
    AwsStack,
    FakeLambdaContext,
    handler_module,
    invoke,
    load_event,
    runner_event,
    start_aws_stack,
    unique_org,
    user_event,
)

from bench.dynamo_accounting import (
    DynamoCall,
    DynamoRecorder,
    TableSchema,
    read_units,
    snapshot,
    table_schemas,
    write_units,
)

HEARTBEAT = "heartbeat"
EMPTY_POLL = "poll (empty)"
POLL_WITH_JOB = "poll (with a job)"
STATUS_RUNNING = "status update (running)"
STATUS_COMPLETED = "status update (completed)"
AUTHORIZER_MISS = "runner authorizer (cache miss)"
# Measured for the cost of a job (section 5c), not runner routes with a call target.
JOB_CREATED = "job created (POST /v1/jobs)"
ARTIFACT_DECLARED = "artifact declared"
ARTIFACT_BYTES = 256 * 1024  # one report file per job (the cost model's assumption)

# The design's targets: DynamoDB calls per request. An empty poll also reads the runner (strongly
# consistent), so that a regenerated or deleted runner's token is refused on its next call.
TARGET_CALLS: dict[str, int] = {
    HEARTBEAT: 1,
    EMPTY_POLL: 2,
    POLL_WITH_JOB: 2,
    STATUS_RUNNING: 1,
    STATUS_COMPLETED: 1,
    AUTHORIZER_MISS: 1,
}

# The function each request runs in (template.yaml logical ids without "Function").
FUNCTION_OF: dict[str, str] = {
    HEARTBEAT: "Heartbeat",
    EMPTY_POLL: "PollJob",
    POLL_WITH_JOB: "PollJob",
    STATUS_RUNNING: "UpdateJobStatus",
    STATUS_COMPLETED: "UpdateJobStatus",
    AUTHORIZER_MISS: "RunnerAuthorizer",
    JOB_CREATED: "CreateJob",
    ARTIFACT_DECLARED: "CreateJobArtifact",
}

RUNNER_LABELS = ["linux", "docker"]


@dataclass(frozen=True)
class Sample:
    """One measured request."""

    calls: list[DynamoCall]
    seconds: float
    read_units: float
    write_units: float
    index_write_units: float
    log_bytes: int


@dataclass(frozen=True)
class RequestMeasurement:
    """One kind of request, over several repetitions (calls and units must not vary; times are medians)."""

    name: str
    function: str
    target_calls: int | None  # None: measured for the cost model, no target
    calls: int
    operations: str
    read_units: float
    write_units: float  # table writes, transactions counted double
    index_write_units: float
    handler_seconds: float  # in-process, moto included
    dynamodb_seconds: float  # of which inside DynamoDB calls (moto)
    log_bytes: int  # what the function writes to stdout (CloudWatch Logs), Lambda's own lines excluded

    @property
    def passed(self) -> bool:
        return self.target_calls is None or self.calls <= self.target_calls

    @property
    def python_seconds(self) -> float:
        """Handler time outside DynamoDB: the part a Lambda's CPU share scales."""
        return max(0.0, self.handler_seconds - self.dynamodb_seconds)

    @property
    def total_write_units(self) -> float:
        return self.write_units + self.index_write_units


@contextmanager
def function_output() -> Iterator[io.StringIO]:
    """Everything a handler writes to stdout (Powertools logs at the template's INFO level, EMF metrics)."""
    from hangar.core.observability import logger

    buffer = io.StringIO()
    stream_handler: Any = logger.registered_handler
    previous_stream = stream_handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel("INFO")
    try:
        with redirect_stdout(buffer), warnings.catch_warnings():
            # Powertools warns (stderr, not logs) when a function published no metric of its own.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield buffer
    finally:
        logger.setLevel(previous_level)
        stream_handler.setStream(previous_stream)


class RunnerSession:
    """One runner of one tenant, driven through the real handlers the way the agent drives them."""

    def __init__(self) -> None:
        self.org_id = unique_org()
        self._set_enterprise_license()
        body = {"name": "bench-runner", "labels": RUNNER_LABELS, "configuredConcurrency": 1}
        status, created, _ = invoke("CreateRunner", user_event("CreateRunner", self.org_id, body=body))
        _expect(status == 201, "CreateRunner", created)
        self.runner_id: str = created["data"]["_id"]
        self.token: str = created["data"]["token"]
        self.job_id = ""

    def _set_enterprise_license(self) -> None:
        license_body = {"plan": "enterprise"}
        event = user_event("PutOrgLicense", "operators", body=license_body, path_params={"orgId": self.org_id})
        status, body, _ = invoke("PutOrgLicense", event)
        _expect(status == 200, "PutOrgLicense", body)

    def _runner_call(self, logical_id: str, body: Any) -> Any:
        event = runner_event(logical_id, self.org_id, self.runner_id, 1, labels=",".join(RUNNER_LABELS), body=body)
        status, response, _ = invoke(logical_id, event)
        _expect(status == 200, logical_id, response)
        return response["data"]

    def heartbeat(self) -> None:
        from hangar_agent import __version__
        from hangar_agent.agent import system_info

        body = {"status": "online", "version": __version__, "configuredConcurrency": 1, "systemInfo": system_info()}
        self._runner_call("Heartbeat", body)

    def queue_job(self) -> None:
        body = {
            "type": "scan",
            "repositoryConfig": "abc123",
            "repositoryName": "acme/infrastructure",
            "branch": "main",
            "labels": ["linux"],
        }
        status, job, _ = invoke("CreateJob", user_event("CreateJob", self.org_id, body=body))
        _expect(status == 201, "CreateJob", job)

    def poll_empty(self) -> None:
        data = self._runner_call("PollJob", "{}")
        _expect(data["job"] is None, "PollJob (empty)", data)

    def poll_with_job(self) -> None:
        data = self._runner_call("PollJob", "{}")
        _expect(data["job"] is not None, "PollJob (with a job)", data)
        self.job_id = data["job"]["_id"]

    def report_running(self) -> None:
        self._runner_call("UpdateJobStatus", {"jobId": self.job_id, "status": "running"})

    def declare_artifact(self) -> None:
        body = {"jobId": self.job_id, "name": "report.sarif", "contentType": "application/json", "size": ARTIFACT_BYTES}
        event = runner_event(
            "CreateJobArtifact", self.org_id, self.runner_id, 1, labels=",".join(RUNNER_LABELS), body=body
        )
        status, response, _ = invoke("CreateJobArtifact", event)
        _expect(status == 201, "CreateJobArtifact", response)

    def report_completed(self) -> None:
        self._runner_call("UpdateJobStatus", {"jobId": self.job_id, "status": "completed", "result": {"findings": 0}})

    def authorize(self) -> None:
        event = load_event("RunnerAuthorizer")
        event["headers"] = {"X-Runner-Token": self.token}
        event["multiValueHeaders"] = {"X-Runner-Token": [self.token]}
        policy = handler_module("RunnerAuthorizer").handler(event, FakeLambdaContext())
        _expect(policy["policyDocument"]["Statement"][0]["Effect"] == "Allow", "RunnerAuthorizer", policy)


def _expect(condition: bool, what: str, got: Any) -> None:
    if not condition:
        raise RuntimeError(f"{what} did not do what the bench expects: {got}")


def _measure_once(
    aws: AwsStack, recorder: DynamoRecorder, schemas: dict[str, TableSchema], request: Callable[[], None]
) -> Sample:
    before = snapshot(aws.dynamodb, schemas)
    with function_output() as output, recorder.recording() as calls:
        started = time.perf_counter()
        request()
        seconds = time.perf_counter() - started
    after = snapshot(aws.dynamodb, schemas)
    units = write_units(calls, before, after, schemas)
    return Sample(
        calls=list(calls),
        seconds=seconds,
        read_units=sum(read_units(call) for call in calls),
        write_units=units.table,
        index_write_units=units.index,
        log_bytes=len(output.getvalue().encode()),
    )


def _summarise(name: str, samples: list[Sample]) -> RequestMeasurement:
    first = samples[0]
    return RequestMeasurement(
        name=name,
        function=FUNCTION_OF[name],
        target_calls=TARGET_CALLS.get(name),
        calls=max(len(sample.calls) for sample in samples),
        operations=" + ".join(call.operation for call in first.calls),
        read_units=max(sample.read_units for sample in samples),
        write_units=max(sample.write_units for sample in samples),
        index_write_units=max(sample.index_write_units for sample in samples),
        handler_seconds=statistics.median(sample.seconds for sample in samples),
        dynamodb_seconds=statistics.median(sum(call.seconds for call in sample.calls) for sample in samples),
        log_bytes=int(statistics.median(sample.log_bytes for sample in samples)),
    )


def measure_dynamodb_calls_per_request(repeats: int = 10) -> list[RequestMeasurement]:
    """Each runner-route request, a job's creation and one artifact's declaration, `repeats` times (after one
    unmeasured warm-up round that imports the handlers and creates their clients), in a job's order."""
    with start_aws_stack() as aws, DynamoRecorder.installed() as recorder, function_output():
        schemas = table_schemas(aws.dynamodb)
        runner = RunnerSession()
        steps: list[tuple[str, Callable[[], None]]] = [
            (HEARTBEAT, runner.heartbeat),
            (EMPTY_POLL, runner.poll_empty),
            (JOB_CREATED, runner.queue_job),
            (POLL_WITH_JOB, runner.poll_with_job),
            (STATUS_RUNNING, runner.report_running),
            (ARTIFACT_DECLARED, runner.declare_artifact),
            (STATUS_COMPLETED, runner.report_completed),
            (AUTHORIZER_MISS, runner.authorize),
        ]
        samples: dict[str, list[Sample]] = {name: [] for name, _ in steps}
        for round_number in range(repeats + 1):
            for name, request in steps:
                sample = _measure_once(aws, recorder, schemas, request)
                if round_number > 0:
                    samples[name].append(sample)
        return [_summarise(name, samples[name]) for name, _ in steps]
