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

from bench.cold_start import (
    LAYERS,
    measure_bytecode_cold_start,
    measure_cold_starts,
    measure_layer_size,
)
from bench.cold_start_anatomy import measure_cold_start_anatomy
from bench.cold_start_tables import (
    anatomy_tables,
    bytecode_table,
    cold_start_table,
    import_breakdown_table,
    layer_size_table,
)
from bench.cost_tables import cost_tables, event_tables, log_tables
from bench.event_costs import (
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
from bench.log_costs import measure_log_costs
from bench.request_calls import RequestMeasurement, measure_dynamodb_calls_per_request
from bench.sweeper_reads import SweepReads, measure_sweeper_reads
from bench.tables import Table, milliseconds, ratio, units, verdict

SECTIONS = ("calls", "sweeper", "cold-start", "gateway", "cost", "logs", "events", "fleet", "pickup")
SWEEPER_FLEET_SIZES = (1_000, 10_000)
SWEEPER_STALE = 10


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
