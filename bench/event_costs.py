"""Section 8: events and webhook deliveries — what they add per 1,000 jobs, measured on the real functions.

In-process against moto (tables, queue and bus as the test stack makes them): a job is created through
its handler, and the stream records its life writes (queued, assigned, running, completed: the images
DynamoDB Streams would carry) go through the template's stream filters; those that pass are handed to
the event processor one per invocation (no batching: the worst case), and every delivery it queues to
the delivery function, which POSTs to a receiver on 127.0.0.1. Every AWS call is counted; DynamoDB's
request units come from the items' real sizes (`bench.dynamo_accounting`). Baseline: the same records
with no stream filter (every write of the job, and every heartbeat of an idle runner, would invoke the
processor).
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from support import (
    FakeLambdaContext,
    handler_module,
    invoke,
    sqs_event,
    start_aws_stack,
    template,
    unique_org,
    user_event,
)

from bench import cost_model, prices
from bench.dynamo_accounting import WRITE_BLOCK_BYTES, DynamoCall, DynamoRecorder, item_size, read_units

WEBHOOK_COUNTS = (0, 1, 3)
JOB_STATUSES = ("queued", "assigned", "running", "completed")  # the stored states of a job's life
# Assumed in-region latencies (this machine cannot measure them): an AWS call, and a receiver's answer.
AWS_CALL_SECONDS = 0.008
RECEIVER_SECONDS = 0.100
FUNCTION_MEMORY_MB = 256


@dataclass(frozen=True)
class EventCost:
    webhooks: int
    records: int  # stream records of one job's life
    processor_invocations: int  # records that pass the filters
    events: int
    deliveries: int
    calls: Counter[str]  # "service Operation" -> count, for the processor and the delivery function
    read_units: float
    write_units: float

    def lines(self, jobs: float, workload: cost_model.Workload) -> cost_model.CostLines:
        """What `jobs` jobs' events and deliveries cost, by service (section 5c adds them to a job's cost)."""
        lines = cost_model.CostLines()
        invocations = jobs * (self.processor_invocations + self.deliveries)
        seconds = jobs * (sum(self.calls.values()) * AWS_CALL_SECONDS + self.deliveries * RECEIVER_SECONDS)
        gb_seconds = seconds * FUNCTION_MEMORY_MB / 1024
        lines.add(cost_model.LAMBDA_REQUESTS, invocations, invocations * prices.LAMBDA_REQUESTS.dollars / 1e6)
        lines.add(cost_model.LAMBDA_COMPUTE, gb_seconds, gb_seconds * prices.LAMBDA_ARM_GB_SECOND.dollars)
        lines.add(
            cost_model.DYNAMODB_READS,
            jobs * self.read_units,
            jobs * self.read_units * prices.DYNAMODB_RRU.dollars / 1e6,
        )
        lines.add(
            cost_model.DYNAMODB_WRITES,
            jobs * self.write_units,
            jobs * self.write_units * prices.DYNAMODB_WRU.dollars / 1e6,
        )
        sqs = sum(count for name, count in self.calls.items() if name.startswith("sqs "))
        sqs += 2 * self.deliveries  # Lambda's poller: a ReceiveMessage and a DeleteMessage per message
        lines.add(cost_model.SQS, jobs * sqs, jobs * sqs * prices.SQS_REQUESTS.dollars / 1e6)
        events = jobs * self.calls["events PutEvents"]
        lines.add(cost_model.EVENTBRIDGE, events, events * prices.EVENTBRIDGE_EVENTS.dollars / 1e6)
        decrypts = jobs * self.calls["kms Decrypt"]
        lines.add(cost_model.KMS, decrypts, decrypts * prices.KMS_REQUESTS.dollars / 1e6)
        log_gb = invocations * cost_model.LAMBDA_PLATFORM_LOG_BYTES / 1e9
        cost_model.add_log_bytes(lines, log_gb, workload.function_log_retention_days)
        return lines

    def dollars_per_thousand_jobs(self) -> float:
        return self.lines(1000, cost_model.workload_from_stack()).total


@contextmanager
def _receiver() -> Iterator[str]:
    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


def _job_records(org: str) -> list[dict[str, Any]]:
    """The stream records of one job's life: created, claimed, running, completed (new and old images)."""
    body = {"type": "scan", "repositoryConfig": "abc", "repositoryName": "acme/infra", "branch": "main"}
    status, job, _ = invoke("CreateJob", user_event("CreateJob", org, body=body))
    assert status == 201, job
    item = boto3.client("dynamodb").get_item(
        TableName="JobsTable", Key={"orgId": {"S": org}, "jobId": {"S": job["id"]}}, ConsistentRead=True
    )["Item"]
    images = []
    for index, status_name in enumerate(JOB_STATUSES):
        image = copy.deepcopy(item)
        image["status"] = {"S": status_name}
        image["updatedAt"] = {"S": f"2026-12-02T00:00:0{index}.000Z"}
        images.append(image)
    keys = {"orgId": item["orgId"], "jobId": item["jobId"]}
    records: list[dict[str, Any]] = [
        {"eventID": f"{job['id']}-0", "eventName": "INSERT", "dynamodb": {"Keys": keys, "NewImage": images[0]}}
    ]
    for index in range(1, len(images)):
        change = {"Keys": keys, "OldImage": images[index - 1], "NewImage": images[index]}
        records.append({"eventID": f"{job['id']}-{index}", "eventName": "MODIFY", "dynamodb": change})
    return records


def _filters(source: str) -> tuple[Any, ...]:
    from local.template import event_sources

    return next(spec.filters for spec in event_sources(template()) if spec.source == source)


def heartbeat_record() -> dict[str, Any]:
    """What an idle runner's heartbeat writes: online before, online after, a new heartbeat time."""
    old = {
        "orgId": {"S": "acme"},
        "runnerId": {"S": "rnr_1"},
        "status": {"S": "online"},
        "lastHeartbeatEpoch": {"N": "1"},
    }
    new = {**old, "lastHeartbeatEpoch": {"N": "31"}}
    return {"eventID": "hb", "eventName": "MODIFY", "dynamodb": {"Keys": {}, "OldImage": old, "NewImage": new}}


def heartbeat_passes_filters() -> bool:
    from local.event_sources import passes

    return passes(_filters("RunnersTable"), heartbeat_record())


@contextmanager
def _all_calls() -> Iterator[Counter[str]]:
    """Every AWS call of clients made inside the block ("<service> <Operation>" -> count)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    counter: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counter[f"{model.service_model.endpoint_prefix} {model.name}"] += 1

    session.events.register("before-call", count)
    try:
        yield counter
    finally:
        session.events.unregister("before-call", count)


def measure_event_costs() -> list[EventCost]:
    from hangar.core.config import get_settings
    from hangar.events.models.webhooks import CreateWebhookRequest
    from hangar.events.webhooks import create_webhook

    from local.event_sources import passes

    results = []
    os.environ["ALLOW_INSECURE_WEBHOOKS"] = "true"
    get_settings.cache_clear()
    try:
        with (
            start_aws_stack() as stack,
            _receiver() as url,
            _all_calls() as all_calls,
            DynamoRecorder.installed() as recorder,
        ):
            job_filters = _filters("JobsTable")
            sqs = boto3.client("sqs")
            for count in WEBHOOK_COUNTS:
                org = unique_org()
                for _ in range(count):
                    create_webhook(org, CreateWebhookRequest(url=url, events=["*"]))
                records = _job_records(org)
                passing = [record for record in records if passes(job_filters, record)]
                before = Counter(all_calls)
                dynamo_calls: list[DynamoCall] = []
                with recorder.recording() as recorded:
                    events = 0
                    for record in passing:
                        handler_module("EventProcessor").handler({"Records": [record]}, FakeLambdaContext())
                        events += 1
                    deliveries = 0
                    while messages := sqs.receive_message(
                        QueueUrl=stack.delivery_queue_url, MaxNumberOfMessages=10
                    ).get("Messages", []):
                        for message in messages:
                            event = sqs_event(message)
                            handler_module("WebhookDelivery").handler(event, FakeLambdaContext())
                            sqs.delete_message(
                                QueueUrl=stack.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"]
                            )
                            deliveries += 1
                    dynamo_calls = list(recorded)
                calls = Counter(all_calls)
                calls.subtract(before)
                calls = Counter({name: n for name, n in calls.items() if n > 0})
                # The bench's own queue reads stand for Lambda's poller (priced per delivery above).
                for name in ("sqs ReceiveMessage", "sqs DeleteMessage"):
                    calls.pop(name, None)
                writes = sum(
                    max(1, -(-item_size(call.params.get("Item") or _updated(call)) // WRITE_BLOCK_BYTES))
                    for call in dynamo_calls
                    if call.operation in ("PutItem", "UpdateItem")
                )
                results.append(
                    EventCost(
                        webhooks=count,
                        records=len(records),
                        processor_invocations=len(passing),
                        events=events,
                        deliveries=deliveries,
                        calls=calls,
                        read_units=sum(read_units(call) for call in dynamo_calls),
                        write_units=float(writes),
                    )
                )
    finally:
        os.environ.pop("ALLOW_INSECURE_WEBHOOKS", None)
        get_settings.cache_clear()
    return results


def _updated(call: DynamoCall) -> dict[str, Any]:
    """An UpdateItem's item as it was written (ReturnValues ALL_NEW), for its size."""
    attributes: dict[str, Any] = call.response.get("Attributes") or {}
    return attributes


def summary(costs: list[EventCost]) -> str:
    return json.dumps([{"webhooks": c.webhooks, "dollars": c.dollars_per_thousand_jobs()} for c in costs])
