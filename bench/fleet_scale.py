"""Section 7: a fleet of a million runners, on paper (DynamoDB's per-partition limits) and in the bench (the
real sweeper against 100,000 seeded runners, then an outage's worth of stale runners at once).

On paper: every heartbeat rewrites the runner's `LiveByHeartbeat` entry (its sort key changes: a delete and
a put, 2 index WCU, section 1), and all entries of a shard share one partition key, whose partition takes
at most 1,000 WCU/s; the sort key only grows, so DynamoDB cannot split that partition for heat. The
largest fleet a shard count holds follows. The sizing rule (README "Sizing") keeps each shard at half that.

In the bench: runners are put straight into moto's in-process table (the heartbeat's attributes, with
`liveShard` from `hangar.store.runners.live_shard` at the chosen shard count), and the real Sweeper handler
runs in-process; every DynamoDB response it gets is counted (`DynamoRecorder`). moto answers a Query by
walking the whole table, so the time inside DynamoDB calls is moto's, not DynamoDB's: the table gives it
apart from the sweeper's own time.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from support import start_aws_stack

from bench.dynamo_accounting import DynamoRecorder
from bench.request_calls import function_output
from bench.sweeper_reads import ORGS, STALE_HEARTBEAT_AGE_SECONDS, linear_item_size_check, run_sweeper, runner_item

PARTITION_WCU_PER_SECOND = 1_000  # DynamoDB's per-partition write limit
PARTITION_RCU_PER_SECOND = 3_000  # and read limit (strongly consistent 4 KB reads)
HEARTBEAT_INDEX_WRITES = 2  # section 1: the LiveByHeartbeat entry deleted and re-put by every heartbeat
JOB_DUE_INDEX_WRITES = 4  # a job's DueByDeadline entry: put at creation, moved at claim (2), deleted at the end
SIZING_HEADROOM = 0.5  # the sizing rule plans each shard at half its partition's limit
SHARD_COUNTS = (4, 16, 64, 134, 256, 1000)
TARGET_FLEET = 1_000_000
BENCH_FLEET = 100_000
BENCH_STALE = 1_000  # 1 % of the fleet silent: a measured sweep
OUTAGE_STALE = 50_000  # half the fleet silent at once
OUTAGE_BUDGET_ITEMS = 1_000  # what one sweep has time for in the outage runs (counted, not timed)


def runners_per_shard(heartbeat_interval_seconds: int, headroom: float = 1.0) -> int:
    """Runners one LiveByHeartbeat shard holds: its partition's WCU/s over a heartbeat's index writes."""
    return int(PARTITION_WCU_PER_SECOND / HEARTBEAT_INDEX_WRITES * heartbeat_interval_seconds * headroom)


def shards_for(runners: int, heartbeat_interval_seconds: int) -> int:
    """The sizing rule: IndexShards for a fleet, each shard at SIZING_HEADROOM of its partition."""
    return math.ceil(runners / runners_per_shard(heartbeat_interval_seconds, SIZING_HEADROOM))


@dataclass(frozen=True)
class ShardCapacity:
    shards: int
    heartbeats_per_second: int  # the LiveByHeartbeat index's write limit, in heartbeats
    largest_fleet: int  # at 100 % of every shard's partition
    sized_fleet: int  # at the sizing rule's headroom
    job_transitions_per_second: int  # DueByDeadline: jobs started per second at its write limit


def shard_capacities(heartbeat_interval_seconds: int) -> list[ShardCapacity]:
    return [
        ShardCapacity(
            shards=shards,
            heartbeats_per_second=shards * PARTITION_WCU_PER_SECOND // HEARTBEAT_INDEX_WRITES,
            largest_fleet=shards * runners_per_shard(heartbeat_interval_seconds),
            sized_fleet=shards * runners_per_shard(heartbeat_interval_seconds, SIZING_HEADROOM),
            job_transitions_per_second=shards * PARTITION_WCU_PER_SECOND // JOB_DUE_INDEX_WRITES,
        )
        for shards in SHARD_COUNTS
    ]


@dataclass(frozen=True)
class SweepRun:
    label: str
    stale_before: int  # stale runners when the sweep started
    marked_offline: int
    complete: bool
    calls: int
    items_read: int  # DynamoDB's own count (ScannedCount, found GetItems)
    largest_page: int  # the most index entries one response handed the sweeper
    seconds: float  # in-process, moto included
    dynamodb_seconds: float  # of which inside DynamoDB calls (moto's Query walks the whole table)


@dataclass(frozen=True)
class FleetSweeps:
    runners: int
    shards: int
    seed_seconds: float
    runs: list[SweepRun]
    full_scan_items: int  # baseline: a sweep that Scans the table reads every runner


def _seed(table: Any, runners: int, stale: int, now: float) -> None:
    """`runners` live runners into moto's table, the first `stale` silent for STALE_HEARTBEAT_AGE_SECONDS."""
    with linear_item_size_check():
        for index in range(runners):
            age = STALE_HEARTBEAT_AGE_SECONDS if index < stale else index % 60
            table.put_item(runner_item(f"org-bench-{index % ORGS:04d}", f"rnr_{index:016x}", round(now - age, 3)))


def _sweep(recorder: DynamoRecorder, label: str, stale_before: int, budget: int | None = None) -> SweepRun:
    remaining = iter(range(budget)) if budget is not None else None
    time_left = (lambda: next(remaining, None) is not None) if remaining is not None else (lambda: True)
    from hangar.jobs import sweeper

    with recorder.recording() as calls:
        started = time.perf_counter()
        summary = sweeper.sweep(time_left=time_left)
        seconds = time.perf_counter() - started
    pages = [len(call.response.get("Items", [])) for call in calls if call.operation == "Query"]
    return SweepRun(
        label=label,
        stale_before=stale_before,
        marked_offline=summary.runnersMarkedOffline,
        complete=summary.complete,
        calls=len(calls),
        items_read=sum(call.items_read for call in calls),
        largest_page=max(pages, default=0),
        seconds=seconds,
        dynamodb_seconds=sum(call.seconds for call in calls),
    )


def measure_fleet_sweeps(heartbeat_interval_seconds: int, runners: int = BENCH_FLEET) -> FleetSweeps:
    """The real sweeper against `runners` seeded runners at the shard count the sizing rule gives them."""
    from hangar.core import clock
    from hangar.core.config import get_settings
    from moto.dynamodb.models import dynamodb_backends

    shards = shards_for(runners, heartbeat_interval_seconds)
    # The environment, not a patched Settings object: the test stack clears the settings cache.
    with (
        patch.dict(os.environ, {"INDEX_SHARDS": str(shards)}),
        start_aws_stack() as aws,
        function_output(),
        clock.frozen(),
    ):
        get_settings.cache_clear()
        assert get_settings().index_shards == shards
        table = dynamodb_backends["123456789012"]["us-east-1"].get_table("RunnersTable")
        with DynamoRecorder.installed() as recorder:
            # Imports the handler and creates its clients while the table is empty: moto walks the whole
            # table for every Query, so the same unmeasured sweep after seeding would take a minute.
            run_sweeper()
            started = time.perf_counter()
            _seed(table, runners, 0, clock.now())
            seed_seconds = time.perf_counter() - started
            full_scan = sum(
                int(page["ScannedCount"])
                for page in aws.dynamodb.get_paginator("scan").paginate(TableName="RunnersTable", Select="COUNT")
            )
            runs = [_sweep(recorder, "nothing stale (idle)", 0)]
            _seed(table, BENCH_STALE, BENCH_STALE, clock.now())
            runs.insert(0, _sweep(recorder, f"{BENCH_STALE:,} stale (1 %)", BENCH_STALE))
            _seed(table, OUTAGE_STALE, OUTAGE_STALE, clock.now())  # an outage: half the fleet silent at once
            left = OUTAGE_STALE
            for attempt in (1, 2):
                run = _sweep(recorder, f"outage, sweep {attempt} ({OUTAGE_BUDGET_ITEMS:,} items' time)", left,
                             OUTAGE_BUDGET_ITEMS)  # fmt: skip
                runs.append(run)
                left -= run.marked_offline
    get_settings.cache_clear()
    return FleetSweeps(runners=runners, shards=shards, seed_seconds=seed_seconds, runs=runs, full_scan_items=full_scan)
