"""Section 2: what the scheduled sweeper reads, at two fleet sizes with the same number of stale runners.

Runners are seeded straight into moto (BatchWriteItem) with the attributes hangar's heartbeat writes
(liveShard from `hangar.store.runners.live_shard`, lastHeartbeatEpoch), then the real Sweeper handler
runs in-process and every DynamoDB response it gets is counted (`DynamoRecorder`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from support import AwsStack, FakeLambdaContext, handler_module, load_event, start_aws_stack

from bench.dynamo_accounting import READ_BLOCK_BYTES, DynamoRecorder, item_size, read_units
from bench.request_calls import function_output

ORGS = 100  # runners are spread over this many tenants
STALE_HEARTBEAT_AGE_SECONDS = 600  # well past STALE_AFTER_SECONDS (90)
BATCH_SIZE = 25  # BatchWriteItem's maximum


@dataclass(frozen=True)
class SweepReads:
    """One sweep of a fleet: what DynamoDB returned to it, next to the baselines."""

    runners: int
    stale: int
    calls: int
    items_read: int  # sum of ScannedCount (Query/Scan) and found GetItems over the sweep's calls
    sweeper_items_read: int  # the handler's own summary (itemsRead)
    read_units: float
    marked_offline: int
    idle_calls: int  # a second sweep, when nothing is stale any more
    idle_items_read: int
    idle_read_units: float
    idle_seconds: float  # in-process, moto included
    idle_dynamodb_seconds: float  # of which inside DynamoDB calls
    full_scan_items_read: int  # baseline: a Scan of the whole Runners table
    full_scan_read_units: float

    @property
    def passed(self) -> bool:
        """Every stale runner taken offline, reading at most three items for each."""
        return self.marked_offline == self.stale and self.items_read <= 3 * self.stale


def runner_item(org_id: str, runner_id: str, heartbeat_epoch: float) -> dict[str, Any]:
    """A live runner as the heartbeat leaves it (hangar.fleet.heartbeat.record_heartbeat's fields)."""
    from hangar.core import clock
    from hangar.store.dynamo import to_item
    from hangar.store.runners import live_shard

    seen = clock.iso(heartbeat_epoch)
    return to_item(
        {
            "orgId": org_id,
            "runnerId": runner_id,
            "name": f"runner-{runner_id[-6:]}",
            "labels": ["linux", "docker"],
            "status": "online",
            "version": "0.1.0",
            "systemInfo": {"cpu": 4, "memory": 8589934592, "disk": 107374182400},
            "configuredConcurrency": 1,
            "currentJobs": 0,
            "jobsCompleted": 0,
            "tokenId": runner_id[-12:],
            "tokenVersion": 1,
            "createdAt": seen,
            "updatedAt": seen,
            "lastHeartbeatAt": seen,
            "lastHeartbeatEpoch": heartbeat_epoch,
            "liveShard": live_shard(runner_id),
        }
    )


@contextmanager
def linear_item_size_check() -> Iterator[None]:
    """moto 5 re-sums an item's whole size each time an attribute is set (quadratic in attributes: most of a
    put's time, through PutItem and BatchWriteItem alike). The seeded runners are under 1 KB, far from the
    400 KB limit that check guards, so while seeding an attribute is set as in a plain dict. Where moto has
    no such class, nothing changes."""
    from moto.dynamodb.models import dynamo_type

    limited = getattr(dynamo_type, "LimitedSizeDict", None)
    if limited is None:
        yield
        return
    with patch.object(limited, "__setitem__", dict.__setitem__):
        yield


def seed_runners(aws: AwsStack, runners: int, stale: int) -> int:
    """`runners` live runners, the first `stale` of them silent for STALE_HEARTBEAT_AGE_SECONDS; their
    total size in bytes."""
    from hangar.core import clock

    now = clock.now()
    requests: list[dict[str, Any]] = []
    for index in range(runners):
        age = STALE_HEARTBEAT_AGE_SECONDS if index < stale else index % 60
        item = runner_item(f"org-bench-{index % ORGS:04d}", f"rnr_{index:016x}", round(now - age, 3))
        requests.append({"PutRequest": {"Item": item}})
    with linear_item_size_check():
        for start in range(0, len(requests), BATCH_SIZE):
            pending: dict[str, Any] = {"RunnersTable": requests[start : start + BATCH_SIZE]}
            while pending:
                pending = aws.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return sum(item_size(request["PutRequest"]["Item"]) for request in requests)


def run_sweeper() -> dict[str, Any]:
    summary: dict[str, Any] = handler_module("Sweeper").handler(load_event("Sweeper"), FakeLambdaContext())
    return summary


def full_scan_items_read(aws: AwsStack) -> int:
    """The baseline a naive sweeper would pay every minute: a Scan reads every runner. (Select=COUNT reads
    the same items as a plain Scan, and bills the same, but spares moto building 10,000 responses.)"""
    pages = aws.dynamodb.get_paginator("scan").paginate(TableName="RunnersTable", Select="COUNT")
    return sum(int(page["ScannedCount"]) for page in pages)


def measure_sweeper_reads(runners: int, stale: int = 10) -> SweepReads:
    """Seed `runners` runners (`stale` of them stale), sweep, sweep again, and Scan for the baseline."""
    with start_aws_stack() as aws, function_output():
        table_bytes = seed_runners(aws, runners, stale)
        scanned = full_scan_items_read(aws)
        with DynamoRecorder.installed() as recorder:
            run_sweeper()  # imports the handler and creates its clients; finds the stale runners...
            # ...so re-seed them stale, to measure a warm sweep that has work to do.
            seed_runners(aws, stale, stale)
            with recorder.recording() as calls:
                summary = run_sweeper()
            with recorder.recording() as idle_calls:
                started = time.perf_counter()
                run_sweeper()
                idle_seconds = time.perf_counter() - started
    return SweepReads(
        runners=runners,
        stale=stale,
        calls=len(calls),
        items_read=sum(call.items_read for call in calls),
        sweeper_items_read=int(summary["itemsRead"]),
        read_units=sum(read_units(call) for call in calls),
        marked_offline=int(summary["runnersMarkedOffline"]),
        idle_calls=len(idle_calls),
        idle_items_read=sum(call.items_read for call in idle_calls),
        idle_read_units=sum(read_units(call) for call in idle_calls),
        idle_seconds=idle_seconds,
        idle_dynamodb_seconds=sum(call.seconds for call in idle_calls),
        full_scan_items_read=scanned,
        full_scan_read_units=math.ceil(table_bytes / READ_BLOCK_BYTES) * 0.5,  # eventually consistent
    )
