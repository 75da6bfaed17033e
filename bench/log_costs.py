"""Section 6: job logs — what a chunk costs to write, store and read, measured on the real handlers.

The append and read handlers run in-process against moto (tables from template.yaml), driven like an
agent and a follower would; every DynamoDB call is counted and its request units computed from the
items' real sizes (`bench.dynamo_accounting`). Chunks are a synthetic scanner log (timestamped lines:
paths, rule ids, counts; compressible like real output) and, as the worst case for compression, random
text. From the measurements: API requests per MiB, dollars per GiB of log written (WAF, API Gateway,
Lambda, DynamoDB, CloudWatch Logs) and per GiB stored for LogRetentionDays (DynamoDB storage and PITR),
beside the design not taken (each chunk an S3 object) modelled from the same counts.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import partial
from typing import Any

from support import start_aws_stack

from bench import cost_model, prices
from bench.dynamo_accounting import DynamoRecorder, item_size, table_schemas
from bench.request_calls import RequestMeasurement, RunnerSession, Sample, _measure_once, function_output

MIB = 1024 * 1024
GIB = 1024 * MIB
# A chunk is what the agent sends at most every second or 64 KiB: a quiet job's line or two, a busy
# job's second of output, a full chunk.
CHUNK_SIZES = (256, 4096, 64 * 1024)
APPEND = "AppendJobLog"
READ = "GetJobLogs"
APPEND_TARGET_CALLS = 2  # the job's GetItem and one TransactWriteItems
READ_TARGET_CALLS = 2  # the job's GetItem and one Query

DYNAMODB_STORAGE_PER_GB_MONTH = prices.DYNAMODB_STORAGE.dollars
DYNAMODB_PITR_PER_GB_MONTH = prices.DYNAMODB_PITR.dollars
S3_PUT_PER_THOUSAND = prices.S3_PUT.dollars
S3_GET_PER_THOUSAND = prices.S3_GET.dollars
S3_STANDARD_PER_GB_MONTH = prices.S3_STANDARD.dollars
MONTH_DAYS = 30

_WORDS = ("modules", "network", "storage", "iam", "compute", "dns", "main", "variables", "outputs", "policy")
_RULES = ("CKV_AWS_18", "CKV_AWS_21", "CKV_AWS_144", "TFSEC-AWS-017", "KICS-4a5b", "CIS-1.4")


def scanner_log(size: int, seed: int) -> str:
    """`size` bytes of scanner-like output: timestamped INFO/WARN lines naming files, rules and counts."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        path = "/".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4))) + ".tf"
        stamp = f"2026-01-0{rng.randint(1, 9)}T1{rng.randint(0, 9)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}"
        if rng.random() < 0.2:
            line = f"{stamp}.{rng.randint(100, 999)}Z WARN  {rng.choice(_RULES)}: {path}:{rng.randint(1, 400)} fails\n"
        else:
            line = f"{stamp}.{rng.randint(100, 999)}Z INFO  checked {path} ({rng.randint(1, 60)} resources)\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)[:size]


def random_text(size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(size))


CORPORA = {"scanner log": scanner_log, "random text": random_text}


@dataclass(frozen=True)
class ChunkCost:
    """Appending chunks of one size and kind, and what they leave stored."""

    corpus: str
    chunk_bytes: int
    request: RequestMeasurement
    stored_bytes: float  # item bytes DynamoDB stores (and bills) per chunk

    @property
    def storage_ratio(self) -> float:
        return self.stored_bytes / self.chunk_bytes

    @property
    def requests_per_mib(self) -> float:
        return MIB / self.chunk_bytes


@dataclass(frozen=True)
class ReadCost:
    request: RequestMeasurement
    bytes_per_page: int


@dataclass(frozen=True)
class LogCosts:
    chunks: list[ChunkCost]
    read: ReadCost
    retention_days: int


def _summary(name: str, function: str, target: int, samples: list[Sample]) -> RequestMeasurement:
    first = samples[0]
    ordered = sorted(samples, key=lambda sample: sample.seconds)
    median = ordered[len(ordered) // 2]
    return RequestMeasurement(
        name=name,
        function=function,
        target_calls=target,
        calls=max(len(sample.calls) for sample in samples),
        operations=" + ".join(call.operation for call in first.calls),
        read_units=max(sample.read_units for sample in samples),
        write_units=max(sample.write_units for sample in samples),
        index_write_units=max(sample.index_write_units for sample in samples),
        handler_seconds=median.seconds,
        dynamodb_seconds=sum(call.seconds for call in median.calls),
        log_bytes=median.log_bytes,
    )


def measure_log_costs(repeats: int = 10) -> LogCosts:
    """Appends `repeats` chunks of each size and corpus (after a warm-up chunk) to one running job; then,
    on a second job whose log is 4 KiB chunks, reads it as a follower does, a default page at a time."""
    from hangar.core.config import get_settings
    from support import invoke, user_event

    with start_aws_stack() as aws, DynamoRecorder.installed() as recorder, function_output():
        schemas = table_schemas(aws.dynamodb)
        runner = RunnerSession()
        runner.heartbeat()
        seq = 0

        def start_job() -> None:
            nonlocal seq
            runner.queue_job()
            runner.poll_with_job()
            runner.report_running()
            seq = 0

        def append(data: str) -> None:
            nonlocal seq
            runner._runner_call(APPEND, {"jobId": runner.job_id, "seq": seq, "data": data})
            seq += 1

        start_job()
        append("warm-up\n")
        batches: list[tuple[str, int, list[Sample], range]] = []
        for corpus, make in CORPORA.items():
            for size in CHUNK_SIZES:
                first = seq
                samples = []
                for index in range(repeats):
                    samples.append(_measure_once(aws, recorder, schemas, partial(append, make(size, first + index))))
                batches.append((corpus, size, samples, range(first, seq)))
        stored = _chunk_item_sizes(aws.dynamodb, runner.org_id, runner.job_id)
        chunks = [
            ChunkCost(
                corpus,
                size,
                _summary(_append_name(size, corpus), APPEND, APPEND_TARGET_CALLS, samples),
                sum(stored[number] for number in seqs) / len(seqs),
            )
            for corpus, size, samples, seqs in batches
        ]

        runner.report_completed()
        start_job()
        for index in range(60):
            append(scanner_log(CHUNK_SIZES[1], seed=index))
        read_bytes: list[int] = []

        def read_page() -> None:
            event = user_event(READ, runner.org_id, path_params={"jobId": runner.job_id})
            status, body, _ = invoke(READ, event)
            if status != 200 or not body["chunks"]:
                raise RuntimeError(f"GetJobLogs did not do what the bench expects: {status} {body}")
            read_bytes.append(sum(len(chunk["data"].encode()) for chunk in body["chunks"]))

        read_page()
        read_samples = [_measure_once(aws, recorder, schemas, read_page) for _ in range(repeats)]
        read = ReadCost(_summary("read a page (4 KiB chunks)", READ, READ_TARGET_CALLS, read_samples), read_bytes[-1])
        return LogCosts(chunks, read, get_settings().log_retention_days)


def _append_name(size: int, corpus: str) -> str:
    return f"append {size // 1024} KiB ({corpus})" if size >= 1024 else f"append {size} B ({corpus})"


def _chunk_item_sizes(dynamodb: Any, org_id: str, job_id: str) -> dict[int, int]:
    """seq -> bytes of the stored chunk item (what DynamoDB bills for storage) of the job's log."""
    sizes: dict[int, int] = {}
    pages = dynamodb.get_paginator("query").paginate(
        TableName="JobOutputsTable",
        KeyConditionExpression="jobKey = :job",
        ExpressionAttributeValues={":job": {"S": f"{org_id}#{job_id}"}},
    )
    for page in pages:
        for item in page["Items"]:
            sizes[int(item["seq"]["N"])] = item_size(item)
    return sizes


# --- dollars -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GibCost:
    chunk: ChunkCost
    written: cost_model.CostLines  # per GiB of log written
    stored: float  # per GiB written, kept LogRetentionDays
    s3_written: float  # the alternative: each chunk an S3 object (job counters still in DynamoDB)
    s3_stored: float


def per_gib(costs: LogCosts) -> list[GibCost]:
    workload = cost_model.workload_from_stack()
    months = costs.retention_days / MONTH_DAYS
    results: list[GibCost] = []
    for chunk in costs.chunks:
        count = GIB / chunk.chunk_bytes
        lines = cost_model.CostLines()
        cost_model.add_api_requests(lines, chunk.request, count, workload)
        stored_gb = chunk.storage_ratio  # GB-month per GiB written, per month kept
        stored = stored_gb * months * (DYNAMODB_STORAGE_PER_GB_MONTH + DYNAMODB_PITR_PER_GB_MONTH)
        # S3 instead: the same requests, minus the chunk item's DynamoDB writes (2 x its KB, in a
        # transaction), plus one PUT; stored uncompressed at S3's price.
        chunk_write_units = 2 * max(1, -(-int(chunk.stored_bytes) // 1024))
        dynamodb_saved = count * chunk_write_units * cost_model.DYNAMODB_PER_MILLION_WRU / 1e6
        s3_written = lines.total - dynamodb_saved + count * S3_PUT_PER_THOUSAND / 1000
        s3_stored = months * S3_STANDARD_PER_GB_MONTH
        results.append(GibCost(chunk, lines, stored, s3_written, s3_stored))
    return results


def read_per_gib(costs: LogCosts) -> tuple[float, float, float]:
    """(requests per MiB read, dollars per GiB read, the S3 alternative's dollars per GiB read)."""
    workload = cost_model.workload_from_stack()
    pages = GIB / costs.read.bytes_per_page
    lines = cost_model.CostLines()
    cost_model.add_api_requests(lines, costs.read.request, pages, workload)
    # S3: the page's Query becomes a LIST plus a GET per chunk (same API/Lambda cost otherwise).
    chunks_per_page = costs.read.bytes_per_page / CHUNK_SIZES[1]
    s3 = lines.total + pages * (S3_PUT_PER_THOUSAND / 1000 + chunks_per_page * S3_GET_PER_THOUSAND / 1000)
    return MIB / costs.read.bytes_per_page, lines.total, s3
