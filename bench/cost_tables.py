"""Sections 5, 6 and 7's tables: dollars per idle runner-month, per 1,000 jobs and fixed, the prices used,
job logs' and events' costs."""

from __future__ import annotations

from bench import cost_model, prices
from bench.event_costs import (
    FUNCTION_MEMORY_MB,
    EventCost,
    heartbeat_passes_filters,
)
from bench.log_costs import LogCosts, per_gib, read_per_gib
from bench.request_calls import RequestMeasurement
from bench.sweeper_reads import SweepReads
from bench.tables import Table, dollars, milliseconds, quantity, ratio, units


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
