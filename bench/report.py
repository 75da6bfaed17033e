"""`python -m bench`: runs the sections and prints one table per section (figures beside same-run baselines)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import cost_model, prices
from bench.cold_start import (
    HANGAR_LAYER_TARGET_BYTES,
    HOT_PATH_TARGET_RATIO,
    LAYERS,
    TARGET_RATIO,
    BytecodeColdStart,
    ColdStarts,
    LayerSize,
    measure_bytecode_cold_start,
    measure_cold_starts,
    measure_layer_size,
    target_ratio,
)
from bench.cold_start_anatomy import ColdStartAnatomy, measure_cold_start_anatomy
from bench.event_costs import (
    FUNCTION_MEMORY_MB,
    EventCost,
    heartbeat_passes_filters,
    measure_event_costs,
)
from bench.fleet_scale import (
    BENCH_STALE,
    OUTAGE_BUDGET_ITEMS,
    TARGET_FLEET,
    FleetSweeps,
    runners_per_shard,
    shard_capacities,
    shards_for,
)
from bench.gateway_throughput import GatewayThroughput, measure_gateway_heartbeats
from bench.job_pickup import JobPickups, measure_job_pickups, percentile
from bench.log_costs import LogCosts, measure_log_costs, per_gib, read_per_gib
from bench.request_calls import RequestMeasurement, measure_dynamodb_calls_per_request
from bench.sweeper_reads import SweepReads, measure_sweeper_reads
from bench.tables import Table, dollars, megabytes, milliseconds, quantity, ratio

SECTIONS = ("calls", "sweeper", "cold-start", "gateway", "cost", "logs", "events", "fleet", "pickup")
SWEEPER_FLEET_SIZES = (1_000, 10_000)
SWEEPER_STALE = 10


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def units(value: float) -> str:
    return f"{value:g}"


# --- 1 -----------------------------------------------------------------------------------------------


def dynamodb_calls_table(requests: list[RequestMeasurement], repeats: int) -> Table:
    table = Table(
        "1. DynamoDB calls per request (baseline: the design's target)",
        ["Request", "Function", "Calls", "Target", "Result", "Operations", "RRU", "WRU (table + index)", "Handler"],
        align="llrrllrrr",
    )
    for request in requests:
        table.add(
            request.name,
            request.function,
            request.calls,
            "-" if request.target_calls is None else request.target_calls,
            "-" if request.target_calls is None else verdict(request.passed),
            request.operations,
            units(request.read_units),
            f"{units(request.total_write_units)} ({units(request.write_units)} + {units(request.index_write_units)})",
            milliseconds(request.handler_seconds),
        )
    table.notes = [
        f"Real handlers in-process against moto (tables from template.yaml); {repeats} repetitions after a warm-up;"
        " calls counted with botocore's before-call.dynamodb.* on every client of the session.",
        "RRU/WRU: on-demand request units from the items' sizes (transaction items count double; index writes"
        " as the table's GSIs change). Handler: median in-process time, moto included.",
    ]
    return table


# --- 2 -----------------------------------------------------------------------------------------------


def sweeper_reads_table(sweeps: list[SweepReads]) -> Table:
    table = Table(
        f"2. Items the sweeper reads ({SWEEPER_STALE} stale runners; baselines: the stale count and a full Scan)",
        [
            "Runners",
            "Stale",
            "Taken offline",
            "Sweeper calls",
            "Items read",
            "Sweeper's itemsRead",
            "Items / stale",
            "RRU",
            "Full Scan items",
            "Full Scan RRU",
            "Result (<= 3x stale)",
        ],
        align="rrrrrrrrrrl",
    )
    for sweep in sweeps:
        table.add(
            f"{sweep.runners:,}",
            sweep.stale,
            sweep.marked_offline,
            sweep.calls,
            sweep.items_read,
            sweep.sweeper_items_read,
            ratio(sweep.items_read / sweep.stale),
            units(sweep.read_units),
            f"{sweep.full_scan_items_read:,}",
            units(sweep.full_scan_read_units),
            verdict(sweep.passed),
        )
    same = len({sweep.items_read for sweep in sweeps}) == 1
    idle = sweeps[0]
    table.notes = [
        f"Same items read at every fleet size: {verdict(same)}.",
        f"A sweep with nothing stale: {idle.idle_calls} calls, {idle.idle_items_read} items,"
        f" {units(idle.idle_read_units)} RRU (one Query per live shard and per due shard).",
        "Items read: ScannedCount of every Query/Scan the sweeper made, plus found GetItems (DynamoDB's own count).",
    ]
    return table


# --- 3 -----------------------------------------------------------------------------------------------


def cold_start_table(cold: ColdStarts) -> Table:
    table = Table(
        f"3. Cold start per function (fresh interpreter, CPU time, median of {cold.repeats}; baseline: import"
        " boto3 + boto3.client('dynamodb'), run alongside each)",
        ["Function", "Handler module", "Import + client", "Ratio", "Target", "Result"],
        align="llrrrl",
    )
    table.add(
        "(baseline)", "import boto3; boto3.client('dynamodb')", milliseconds(cold.baseline_seconds), "1.00x", "", ""
    )
    table.add("(floor)", cold.floor.module, milliseconds(cold.floor.seconds), ratio(cold.floor.ratio), "", "")
    for function in sorted(cold.functions, key=lambda item: -item.ratio):
        table.add(
            function.function_id,
            function.module,
            milliseconds(function.seconds),
            ratio(function.ratio),
            f"<= {target_ratio(function.function_id)}x",
            verdict(cold.passed(function)),
        )
    passed = sum(cold.passed(function) for function in cold.functions)
    table.notes = [
        f"{passed} of {len(cold.functions)} functions within their target: {HOT_PATH_TARGET_RATIO}x for the"
        f" agent's hot paths (heartbeat, poll, job status, runner authorizer), {TARGET_RATIO}x for the others.",
        "Ratio: median of (function run / the baseline run started alongside it). Import + client: the handler module's"
        " import and hangar.store.dynamo.client(), with the code directory as the working directory (as in Lambda),"
        " in CPU time of the process (the machine is shared: wall time would count other processes' turns).",
        "(floor): no Hangar code, only what every API handler is built on (one pydantic model, a validating"
        " resolver, Logger, Metrics): the least a handler can cost.",
    ]
    return table


def import_breakdown_table(cold: ColdStarts) -> Table:
    name = cold.breakdown_function.removesuffix("Function")
    table = Table(
        f"3b. Where {name}'s cold start goes (-X importtime, wall time, median of 3: import self time by top-level"
        " package)",
        ["Package", "Baseline", name],
        align="lrr",
    )
    for share in cold.breakdown:
        table.add(share.package, milliseconds(share.baseline_seconds), milliseconds(share.function_seconds))
    return table


def layer_size_table(layers: dict[str, LayerSize]) -> Table:
    table = Table(
        "3c. The layers, unzipped (target: the Hangar layer <= 25 MB; Lambda's limit: 250 MB with the function)",
        ["Layer", "Entry", "Size"],
        "llr",
    )
    for logical_id, layer in layers.items():
        table.add(logical_id, f"total ({layer.files:,} files)", megabytes(layer.total_bytes))
        for entry, size in layer.largest:
            table.add("", entry, megabytes(size))
    hangar = layers["HangarLayer"]
    table.notes = [
        *(f"{logical_id} measured from: {layer.source}." for logical_id, layer in layers.items()),
        f"HangarLayer (every function): {megabytes(hangar.total_bytes)},"
        f" {verdict(hangar.total_bytes <= HANGAR_LAYER_TARGET_BYTES)};"
        " JwtLayer: the user authorizer only. No botocore in either: the python3.13 runtime provides boto3.",
    ]
    return table


def bytecode_table(cold: BytecodeColdStart) -> Table:
    name = cold.function_id.removesuffix("Function")
    table = Table(
        f"3d. {name}'s cold start with the build's bytecode and without it (fresh interpreter, nothing written"
        f" back, median of {cold.repeats}; baseline: with bytecode)",
        ["Layer and code as", "Import + client", "Ratio"],
        align="lrr",
    )
    table.add("make build ships them (sam build + tools.bytecode)", milliseconds(cold.with_bytecode_seconds), "1.00x")
    table.add(
        "sam build alone ships them (sources only)", milliseconds(cold.without_bytecode_seconds), ratio(cold.ratio)
    )
    table.notes = [
        f"A copy of the layer (this machine's wheels of layers/hangar/requirements.txt, and hangar) and of"
        f" {cold.module}'s code directory: {cold.python_files:,} .py files, run with -B as Lambda's read-only"
        " /opt and /var/task allow no cache; without bytecode every one of them is compiled at each cold start.",
        "Ratio: median of (run without / the run with just before it). Under emulation (sam local on arm64 through"
        " qemu) the same compile costs tens of seconds.",
    ]
    return table


def anatomy_tables(anatomy: ColdStartAnatomy) -> list[Table]:
    ladder = Table(
        f"3e. What the cold start is made of: the libraries step by step, and the hot paths without request"
        f" validation (fresh interpreter, Python {anatomy.python_version}, median of {anatomy.repeats}; baseline:"
        " import boto3 + boto3.client('dynamodb'), run alongside each)",
        ["Run", "CPU time", "CPU ratio", "Wall time", "Wall ratio"],
        align="lrrrr",
    )
    for row in anatomy.ladder:
        ladder.add(
            row.label,
            milliseconds(row.cpu_seconds),
            ratio(row.cpu_ratio),
            milliseconds(row.wall_seconds),
            ratio(row.wall_ratio),
        )
    ladder.notes = [
        "Validation off: Powertools' ApiGatewayResolver.__init__ made to force enable_validation=False before the"
        " handler module loads (in the measuring process only; the code is unchanged). Handlers run in their code"
        " directory, the library rows in the repository's.",
        "CPU ratio is section 3's clock; the issue's 1.31x floor was measured in wall time with the first row's"
        " script.",
    ]
    imports = Table(
        f"3f. Heartbeat: the ten largest imports by self time (-X importtime, wall, median of 3; the whole timed"
        f" region took {milliseconds(anatomy.wall_total_seconds)} wall)",
        ["Module", "Self", "Cumulative"],
        align="lrr",
    )
    for cost in anatomy.top_imports:
        imports.add(cost.module, milliseconds(cost.self_seconds), milliseconds(cost.cumulative_seconds))
    groups = Table(
        "3g. Heartbeat: import self time by what it belongs to (-X importtime, wall, median of 3)",
        ["Belongs to", "Self time", "Share"],
        align="lrr",
    )
    total = sum(anatomy.groups.values())
    shown = [(name, seconds) for name, seconds in anatomy.groups.items() if not name.startswith("other (")]
    others = total - sum(seconds for _, seconds in shown)
    for name, seconds in [*shown, ("other packages", others)]:
        groups.add(name, milliseconds(seconds), f"{seconds / total:.0%}")
    groups.notes = [
        "A pydantic model's schema is built when its class statement runs: that time is the defining module's"
        " self time (hangar.core.config's Settings, hangar.models.*).",
    ]
    return [ladder, imports, groups]


# --- 4 -----------------------------------------------------------------------------------------------


def gateway_table(gateway: GatewayThroughput) -> Table:
    table = Table(
        f"4. local/ gateway: heartbeats from {gateway.clients} concurrent clients"
        " (baseline: the heartbeat handler called directly in-process)",
        ["Figure", "Through local/ (HTTP)", "Direct call", "Ratio"],
        align="lrrr",
    )
    table.add(
        f"Heartbeats per second ({gateway.clients} clients)",
        f"{gateway.per_second:.0f}/s",
        f"{gateway.direct_per_second:.0f}/s (1 thread)",
        ratio(gateway.per_second / gateway.direct_per_second),
    )
    table.add(
        "Time per request at full load (1 / throughput)",
        milliseconds(1 / gateway.per_second),
        milliseconds(gateway.direct_call_seconds),
        ratio(gateway.service_time_overhead),
    )
    table.add(
        "Latency p50, one client alone",
        milliseconds(gateway.sequential_p50_seconds),
        milliseconds(gateway.direct_call_seconds),
        ratio(gateway.sequential_p50_seconds / gateway.direct_call_seconds),
    )
    for label, seconds in (("p50", gateway.p50_seconds), ("p99", gateway.p99_seconds)):
        table.add(
            f"Latency {label}, {gateway.clients} clients",
            milliseconds(seconds),
            milliseconds(gateway.direct_call_seconds),
            ratio(seconds / gateway.direct_call_seconds),
        )
    table.notes = [
        f"{gateway.requests:,} heartbeats in {gateway.seconds:.1f} s, {gateway.failures} not 200;"
        f" limits off (HANGAR_LOCAL_LIMITS=off); the server started in {gateway.startup_seconds:.1f} s.",
        "Clients and server share this machine's cores; the server's handlers reach moto (its own process) over HTTP.",
        *gateway.target_notes(),
    ]
    return table


# --- 5 -----------------------------------------------------------------------------------------------


def service_table(title: str, lines: cost_model.CostLines, per: str) -> Table:
    table = Table(title, ["Service", f"Quantity per {per}", "Dollars", "Share"], align="lrrr")
    for service in cost_model.SERVICES:
        if service in lines.dollars:
            share = lines.dollars[service] / lines.total
            table.add(service, quantity(lines.quantities[service]), dollars(lines.dollars[service]), f"{share:.0%}")
    table.add("Total", "", dollars(lines.total), "100%")
    return table


def prices_table() -> Table:
    table = Table(
        f"5f. Prices used (AWS list prices, {prices.REGION}, as published on {prices.PRICES_AS_OF}; free tiers"
        " ignored)",
        ["Item", "Price", "Unit", "Source"],
        align="lrll",
    )
    for price in prices.PRICES:
        table.add(price.item, "$" + f"{price.dollars:.10f}".rstrip("0").rstrip("."), price.unit, price.source)
    return table


def cost_tables(
    requests: list[RequestMeasurement],
    idle_sweep: SweepReads | None,
    log_costs: LogCosts,
    events: list[EventCost],
) -> list[Table]:
    workload = cost_model.workload_from_stack()
    by_name = {request.name: request for request in requests}
    inputs = Table(
        "5a. Cost model inputs (measured in section 1, or from Settings and template.yaml)",
        ["Request", "Per runner-month", "Calls", "RRU", "WRU", "Log bytes", "Python time", "Modelled Lambda time"],
        align="lrrrrrrr",
    )
    counts = {
        "heartbeat": workload.heartbeats,
        "poll (empty)": workload.polls,
        "runner authorizer (cache miss)": workload.authorizer_runs,
    }
    chunk = next(
        chunk
        for chunk in log_costs.chunks
        if chunk.corpus == "scanner log" and chunk.chunk_bytes == cost_model.JOB_LOG_CHUNK_BYTES
    )
    for request in [*requests, chunk.request]:
        inputs.add(
            request.name,
            f"{counts[request.name]:,.0f}" if request.name in counts else "per job",
            request.calls,
            units(request.read_units),
            units(request.total_write_units),
            request.log_bytes,
            milliseconds(request.python_seconds),
            milliseconds(cost_model.invocation_seconds(request, workload)),
        )
    inputs.notes = [
        f"Agent intervals (hangar Settings): heartbeat every {workload.heartbeat_interval_seconds} s, poll every"
        f" {workload.poll_interval_seconds} s; runner authorizer cache {workload.authorizer_ttl_seconds} s"
        f" (template); 30-day month. The log chunk is section 6's measurement.",
        f"Modelled Lambda time: Python time x {cost_model.LAMBDA_FULL_VCPU_MB} MB / MemorySize (the CPU share),"
        f" + {cost_model.DYNAMODB_DEFAULT_LATENCY_SECONDS * 1000:.0f} ms per DynamoDB call"
        f" ({cost_model.DYNAMODB_LATENCY_SECONDS['TransactWriteItems'] * 1000:.0f} ms per transaction), whole ms.",
    ]
    idle = service_table("5b. Dollars per idle runner-month", cost_model.idle_runner_month(by_name, workload),
                         "runner-month")  # fmt: skip
    idle.notes = [
        f"Prices: table 5f (us-east-1, {cost_model.PRICES_AS_OF}). X-Ray: {cost_model.XRAY_SAMPLED_FRACTION:.0%} of"
        " requests sampled (default rule).",
        f"Logs: per request, API Gateway's access log line ({workload.access_log_bytes} bytes by the template's"
        f" Format, kept {workload.access_log_retention_days} days); per invocation,"
        f" {cost_model.LAMBDA_PLATFORM_LOG_BYTES} bytes of Lambda's own lines + the function's measured output"
        f" (kept {workload.function_log_retention_days} days). Stored logs billed uncompressed (an upper bound).",
    ]
    with_webhook = next(cost for cost in events if cost.webhooks == cost_model.JOB_WEBHOOKS)
    parts = cost_model.thousand_jobs(
        by_name, workload, chunk.request, chunk.stored_bytes, with_webhook.lines(1000, workload)
    )
    total = cost_model.total_lines(parts)
    jobs = service_table("5c. Dollars per 1,000 jobs (on top of idle), by service", total, "1,000 jobs")
    jobs.notes = [
        "A job: created through the API, claimed, reported running and completed; its log and one artifact as"
        " in 5d; its events with one webhook (section 8: stream filters, processor, EventBridge, SQS, one"
        " delivery with its KMS Decrypt). DynamoDB and Lambda work measured (sections 1, 6, 8), the rest counted.",
    ]
    by_part = Table("5d. Dollars per 1,000 jobs, by part of a job's life", ["Part", "Dollars", "Share"], align="lrr")
    for part, lines in parts.items():
        by_part.add(part, dollars(lines.total), f"{lines.total / total.total:.0%}")
    by_part.add("Total", dollars(total.total), "100%")
    by_part.notes = [
        f"Log: {cost_model.JOB_LOG_CHUNKS} appends of a {cost_model.JOB_LOG_CHUNK_BYTES // 1024} KiB chunk of"
        f" scanner output (section 6; {chunk.stored_bytes:,.0f} bytes stored per chunk, DynamoDB storage + PITR for"
        f" LogRetentionDays). Artifact: declared through the API (one transaction), one S3 PUT, S3 Standard for"
        " LogRetentionDays (the bucket's lifecycle). Not modelled: downloads, the user reading the job, creation"
        " with an Idempotency-Key (one more table).",
    ]
    fixed = Table("5e. Fixed monthly costs of a deployment (whatever the fleet)", ["Item", "Dollars", "Counted from"],
                  align="lrl")  # fmt: skip
    fixed_costs = cost_model.fixed_monthly_costs(idle_sweep, workload)
    for cost in fixed_costs:
        fixed.add(cost.item, dollars(cost.dollars), cost.source)
    fixed.add("Total", dollars(sum(cost.dollars for cost in fixed_costs)), "")
    fixed.notes = [
        "No fixed charge: API Gateway (usage plans and API keys are free), Lambda, DynamoDB on-demand tables and"
        " streams read by Lambda, the EventBridge bus, CloudFront, S3 buckets, log groups.",
    ]
    return [inputs, idle, jobs, by_part, fixed, prices_table()]


# --- 6 -----------------------------------------------------------------------------------------------


def log_tables(costs: LogCosts, repeats: int) -> list[Table]:
    requests = Table(
        "6a. Job logs: one chunk appended, measured (baseline: the chunk's own bytes)",
        ["Chunk", "Calls", "Operations", "RRU", "WRU", "Stored / chunk bytes", "Requests per MiB", "Handler"],
        align="lrlrrrrr",
    )
    for chunk in costs.chunks:
        request = chunk.request
        requests.add(
            request.name,
            request.calls,
            request.operations,
            units(request.read_units),
            units(request.total_write_units),
            ratio(chunk.storage_ratio),
            units(round(chunk.requests_per_mib)),
            milliseconds(request.handler_seconds),
        )
    read = costs.read.request
    requests.add(
        read.name,
        read.calls,
        read.operations,
        units(read.read_units),
        units(read.total_write_units),
        "",
        f"{read_per_gib(costs)[0]:.1f}",
        milliseconds(read.handler_seconds),
    )
    requests.notes = [
        f"Real handlers in-process against moto, {repeats} chunks of each size after a warm-up, one running job;"
        " request units from the items' sizes (transaction items count double).",
        "Stored / chunk bytes: the chunk's item as DynamoDB bills it (key, seq, time, TTL and the text, zlib-"
        "compressed when that saves a tenth) over the chunk's UTF-8 bytes. Scanner log: synthetic timestamped"
        " lines (paths, rule ids, counts); random text: the worst case for compression.",
        f"Read: one follower request, the default page ({costs.read.bytes_per_page // 1024} KiB of 4 KiB chunks).",
    ]
    dollars_table = Table(
        f"6b. Dollars per GiB of log (baseline: each chunk an S3 object instead, modelled from the same counts;"
        f" kept {costs.retention_days} days)",
        ["Chunk", "Written", "of which DynamoDB", "Stored", "Written + stored", "S3 instead", "S3 / chosen"],
        align="lrrrrrr",
    )
    for cost in per_gib(costs):
        written = cost.written
        dynamodb = written.dollars.get(cost_model.DYNAMODB_WRITES, 0) + written.dollars.get(
            cost_model.DYNAMODB_READS, 0
        )
        chosen = written.total + cost.stored
        alternative = cost.s3_written + cost.s3_stored
        dollars_table.add(
            cost.chunk.request.name.removeprefix("append "),
            dollars(written.total),
            dollars(dynamodb),
            dollars(cost.stored),
            dollars(chosen),
            dollars(alternative),
            ratio(alternative / chosen),
        )
    _, read_dollars, s3_read_dollars = read_per_gib(costs)
    dollars_table.add(
        "read (4 KiB chunks)",
        dollars(read_dollars),
        "",
        "",
        dollars(read_dollars),
        dollars(s3_read_dollars),
        ratio(s3_read_dollars / read_dollars),
    )
    dollars_table.notes = [
        "Written: WAF, API Gateway, Lambda (requests and modelled GB-s), DynamoDB request units and CloudWatch"
        " Logs for the chunks of one GiB (section 5's prices). Stored: DynamoDB storage $0.25 + PITR $0.20 per"
        " GB-month, for the stored bytes, over the retention.",
        "S3 instead: the same requests without the chunk item's writes, plus one PUT ($0.005/1,000) per chunk;"
        " stored uncompressed at $0.023/GB-month; a follower's page becomes a LIST plus a GET per chunk."
        " The log's counters (next seq, bytes, cap) stay on the job item either way.",
    ]
    return [requests, dollars_table]


# --- main --------------------------------------------------------------------------------------------


def event_tables(costs: list[EventCost]) -> list[Table]:
    per_job = Table(
        "8a. Events and webhook deliveries, per job (measured; a job's life: queued, assigned, running, completed)",
        ["Webhooks", "Stream records", "Processor runs", "Events", "Deliveries", "DynamoDB calls", "RRU", "WRU",
         "Other AWS calls", "$ per 1,000 jobs"],
        "rrrrrrrrrr",
    )  # fmt: skip
    for cost in costs:
        dynamodb = sum(n for name, n in cost.calls.items() if name.startswith("dynamodb "))
        others = ", ".join(f"{n} {name}" for name, n in sorted(cost.calls.items()) if not name.startswith("dynamodb "))
        counts = (cost.webhooks, cost.records, cost.processor_invocations, cost.events, cost.deliveries, dynamodb)
        units = (quantity(cost.read_units), quantity(cost.write_units))
        per_job.add(*counts, *units, others or "-", dollars(cost.dollars_per_thousand_jobs()))
    per_job.notes.append(
        " The processor ran once per record that passed the stream filters (no batching: the worst case; Lambda"
        " batches up to 100). Reading the streams is free for Lambda. Lambda time is modelled (8 ms per AWS call,"
        f" 100 ms per receiver answer, {FUNCTION_MEMORY_MB} MB); SQS adds Lambda's receive and delete per message."
    )
    baseline = Table(
        "8b. What the stream filters save (baseline: the same records with no filter)",
        ["Writes", "Processor runs, filtered", "Processor runs, no filter", "Ratio"],
        "lrrr",
    )
    records = costs[0].records if costs else 0
    runs = costs[0].processor_invocations if costs else 0
    baseline.add("a job's life (per job)", runs, records, ratio(runs / records) if records else "-")
    heartbeats = cost_model.MONTH_SECONDS // 30
    filtered = 0 if not heartbeat_passes_filters() else heartbeats
    baseline.add("an idle runner's heartbeats (per month, every 30 s)", quantity(filtered), quantity(heartbeats),
                 ratio(filtered / heartbeats))  # fmt: skip
    return [per_job, baseline]


def machine_line() -> str:
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()},"
        f" {os.cpu_count()} CPUs, {platform.platform(terse=True)}"
    )


# --- 7 -----------------------------------------------------------------------------------------------


def fleet_tables(sweeps: FleetSweeps, heartbeat_interval_seconds: int) -> list[Table]:
    capacity = Table(
        f"7a. The largest fleet each shard count holds (heartbeat every {heartbeat_interval_seconds} s; a"
        " partition takes 1,000 WCU/s; a heartbeat writes its index entry twice)",
        ["IndexShards", "Heartbeats/s (index limit)", "Largest fleet", "Fleet by the sizing rule (50 %)",
         "Jobs started/s (DueByDeadline limit)"],
        "rrrrr",
    )  # fmt: skip
    for row in shard_capacities(heartbeat_interval_seconds):
        capacity.add(
            f"{row.shards:,}",
            f"{row.heartbeats_per_second:,}",
            f"{row.largest_fleet:,}",
            f"{row.sized_fleet:,}",
            f"{row.job_transitions_per_second:,}",
        )
    capacity.notes = [
        f"Sizing rule (README): IndexShards = ceil(runners / {runners_per_shard(heartbeat_interval_seconds, 0.5):,});"
        f" {TARGET_FLEET:,} runners need {shards_for(TARGET_FLEET, heartbeat_interval_seconds)}.",
        "Reads are not the limit: the sweeper reads only stale KEYS_ONLY entries, far below 3,000 RCU/s per partition.",
        "DueByDeadline: a job's entry is written 4 times (created, claimed: delete + put, finished).",
    ]
    idle = next(run for run in sweeps.runs if run.stale_before == 0)
    measured = Table(
        f"7b. The real sweeper against {sweeps.runners:,} seeded runners, {sweeps.shards} shards (the sizing rule's"
        f" count; baselines: the stale count, a full Scan, the idle sweep)",
        ["Sweep", "Stale before", "Taken offline", "Complete", "Calls", "Items read", "Items / offline",
         "Full Scan / items", "Largest page", "Sweep time", "of which in moto", "Time / idle"],
        "lrrlrrrrrrrr",
    )  # fmt: skip
    for run in sweeps.runs:
        measured.add(
            run.label,
            f"{run.stale_before:,}",
            f"{run.marked_offline:,}",
            "yes" if run.complete else "no (next sweep)",
            f"{run.calls:,}",
            f"{run.items_read:,}",
            ratio(run.items_read / run.marked_offline) if run.marked_offline else "",
            ratio(sweeps.full_scan_items / run.items_read) if run.items_read else "",
            f"{run.largest_page:,}",
            milliseconds(run.seconds),
            milliseconds(run.dynamodb_seconds),
            ratio(run.seconds / idle.seconds),
        )
    measured.notes = [
        f"Seeded straight into moto's table in {sweeps.seed_seconds:.0f} s; a full Scan reads"
        f" {sweeps.full_scan_items:,} items. The idle sweep is one Query per live shard and per due shard.",
        f"Outage: {BENCH_STALE:,} -> {sweeps.runs[2].stale_before:,} stale at once; each sweep given time for"
        f" {OUTAGE_BUDGET_ITEMS:,} items (counted, not timed) holds one page (<= 200 entries) at a time and the"
        " next continues where it stopped.",
        "moto answers a Query by walking the whole table: the time in moto grows with the fleet, DynamoDB's does not.",
    ]
    return [capacity, measured]


# --- 9 -----------------------------------------------------------------------------------------------


def pickup_table(measured: JobPickups) -> Table:
    count = len(measured.pickups)
    interval = measured.poll_interval_seconds
    table = Table(
        f"9. Job pickup latency: POST /v1/jobs returned -> the job's command started ({count} jobs, a real"
        f" hangar-agent at its defaults through local/; baselines: the poll interval, {interval:g} s, and the"
        " claim + running report in-process)",
        ["Figure", "Median", "p95", "Baseline", "Median / baseline", "p95 / baseline"],
        align="lrrrrr",
    )
    direct = measured.direct_dispatch_seconds
    rows = (
        ("Pickup (submitted -> command started)", [p.seconds for p in measured.pickups], interval, "poll interval"),
        ("  waiting for the agent's next poll", [p.poll_wait_seconds for p in measured.pickups], interval,
         "poll interval"),
        ("  dispatch: claim -> command started", [p.dispatch_seconds for p in measured.pickups], direct,
         "in-process claim + running"),
        ("    of which claim -> running report", [p.running - p.assigned for p in measured.pickups], direct,
         "in-process claim + running"),
    )  # fmt: skip
    for label, values, baseline, name in rows:
        median, p95 = statistics.median(values), percentile(values, 0.95)
        shown = f"{baseline:g} s ({name})" if baseline >= 1 else f"{milliseconds(baseline)} ({name})"
        table.add(
            label,
            milliseconds(median) if median < 1 else f"{median:.2f} s",
            milliseconds(p95) if p95 < 1 else f"{p95:.2f} s",
            shown,
            ratio(median / baseline),
            ratio(p95 / baseline),
        )
    table.notes = [
        f"{measured.lanes} lanes in parallel (a tenant and an agent each, one job at a time), each job submitted at a"
        f" random offset in [0, {interval:g} s) after the previous one completed; {count} jobs in"
        f" {measured.wall_seconds:.0f} s (server start {measured.startup_seconds:.1f} s).",
        f"The agent's intervals as the server hands them: poll {interval:g} s (+-10 % jitter), heartbeat"
        f" {measured.heartbeat_interval_seconds:g} s. A job submitted at a random moment waits on average half a poll"
        " interval: expect a median near 0.5x and a p95 near 0.95x.",
        "Split by the job's assignedAt and startedAt (server clock, the same clock here). No target yet: the"
        " baseline for push dispatch, which would remove the wait for the next poll.",
    ]
    return table


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)} (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="repetitions of each request in section 1")
    parser.add_argument("--cold-start-repeats", type=int, default=3, help="fresh interpreters per function")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    arguments = parser.parse_args(argv)
    arguments.sections = [name.strip() for name in arguments.sections.split(",") if name.strip()]
    unknown = set(arguments.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    sections = set(arguments.sections)
    output: list[str] = [f"# Hangar benchmark\n\n{machine_line()}"]
    started = time.perf_counter()

    def emit(tables: Table | list[Table]) -> None:
        for table in tables if isinstance(tables, list) else [tables]:
            rendered = table.render()
            output.append(rendered)
            print(f"\n{rendered}", flush=True)

    marks: list[tuple[str, float]] = []

    def progress(label: str) -> None:
        marks.append((label, time.perf_counter()))
        print(f"\n... measuring {label}", file=sys.stderr, flush=True)

    print(output[0], flush=True)
    requests: list[RequestMeasurement] = []
    if sections & {"calls", "cost"}:
        progress("DynamoDB calls per request")
        requests = measure_dynamodb_calls_per_request(arguments.repeats)
        if "calls" in sections:
            emit(dynamodb_calls_table(requests, arguments.repeats))
    sweeps: list[SweepReads] = []
    if sections & {"sweeper", "cost"}:
        for runners in SWEEPER_FLEET_SIZES if "sweeper" in sections else SWEEPER_FLEET_SIZES[:1]:
            progress(f"the sweeper at {runners:,} runners")
            sweeps.append(measure_sweeper_reads(runners, SWEEPER_STALE))
        if "sweeper" in sections:
            emit(sweeper_reads_table(sweeps))
    if "cold-start" in sections:
        progress("cold starts (a fresh interpreter per function and round)")
        cold = measure_cold_starts(arguments.cold_start_repeats)
        layers = {logical_id: measure_layer_size(logical_id) for logical_id in LAYERS}
        emit([cold_start_table(cold), import_breakdown_table(cold), layer_size_table(layers)])
        progress("what the cold start is made of (libraries step by step, hot paths without validation)")
        emit(anatomy_tables(measure_cold_start_anatomy(arguments.cold_start_repeats)))
        progress("cold start with and without bytecode")
        emit(bytecode_table(measure_bytecode_cold_start(arguments.cold_start_repeats)))
    if "gateway" in sections:
        progress("the local/ gateway")
        emit(gateway_table(measure_gateway_heartbeats()))
    log_costs = events = None
    if sections & {"logs", "cost"}:
        progress("job logs (append and read, in-process)")
        log_costs = measure_log_costs(arguments.repeats)
    if sections & {"events", "cost"}:
        progress("events and webhook deliveries (in-process)")
        events = measure_event_costs()
    if "cost" in sections and log_costs is not None and events is not None:
        emit(cost_tables(requests, sweeps[0] if sweeps else None, log_costs, events))
    if "logs" in sections and log_costs is not None:
        emit(log_tables(log_costs, arguments.repeats))
    if "events" in sections and events is not None:
        emit(event_tables(events))
    if "fleet" in sections:
        from hangar.core.config import get_settings

        from bench.fleet_scale import measure_fleet_sweeps

        interval = get_settings().heartbeat_interval_seconds
        progress("a fleet of 100,000 runners: the sweeper at the sizing rule's shard count (seeding takes a minute)")
        emit(fleet_tables(measure_fleet_sweeps(interval), interval))
    if "pickup" in sections:
        progress("job pickup latency (local/ and real agents, about a minute)")
        emit(pickup_table(measure_job_pickups()))
    ended = time.perf_counter()
    spans = [(label.split(" (")[0], until - since) for (label, since), until in
             zip(marks, [*(since for _, since in marks[1:]), ended], strict=True)]  # fmt: skip
    print("\n(time per measurement: " + "; ".join(f"{label} {seconds:.0f} s" for label, seconds in spans) + ")",
          file=sys.stderr)  # fmt: skip
    print(f"\n(bench took {ended - started:.0f} s)", file=sys.stderr)
    if arguments.markdown:
        arguments.markdown.write_text("\n\n".join(output) + "\n")
    return 0
