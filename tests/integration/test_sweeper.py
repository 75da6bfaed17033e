"""The sweeper in-process: it reads only what is stale or due, loses races to heartbeats, recovers the
jobs of lost runners (requeue, then runner_lost), enforces run and queue timeouts, and is idempotent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from builders import heartbeat, live_runner, new_job
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.jobs import sweeper
from hangar.store import dynamo
from hangar.store.runners import live_shard, live_shards
from jobs_helpers import get_job, org_item, polled_job, report, runner_item, sweep
from support import AwsStack, invoke, unique_org, user_event

STALE = get_settings().stale_after_seconds


def counters_are_zero(org: str, *runners: str) -> bool:
    return org_item(org)["activeJobs"] == 0 and all(runner_item(org, r)["currentJobs"] == 0 for r in runners)


def test_every_live_shard_is_swept() -> None:
    assert {live_shard(f"rnr_{index:04x}") for index in range(500)} == set(live_shards())


def seed_runners(aws: AwsStack, org: str, count: int, stale: int) -> list[str]:
    """`count` live runners straight into moto (batch writes), the first `stale` of them silent too long."""
    now = clock.now()
    runner_ids = [f"rnr_{index:016x}" for index in range(count)]
    requests = []
    for index, runner_id in enumerate(runner_ids):
        epoch = now - STALE - 60 if index < stale else now - 5
        item = {
            "orgId": org,
            "runnerId": runner_id,
            "name": f"runner-{index}",
            "labels": ["linux"],
            "status": "online",
            "configuredConcurrency": 1,
            "currentJobs": 0,
            "jobsCompleted": 0,
            "tokenVersion": 1,
            "tokenId": f"{index:012x}",
            "lastHeartbeatEpoch": int(epoch),
            "lastHeartbeatAt": clock.iso(epoch),
            "liveShard": live_shard(runner_id),
        }
        requests.append({"PutRequest": {"Item": dynamo.to_item(item)}})
    for start in range(0, len(requests), 25):
        response = aws.dynamodb.batch_write_item(RequestItems={"RunnersTable": requests[start : start + 25]})
        assert not response.get("UnprocessedItems")
    return runner_ids


@pytest.fixture
def returned_items() -> Iterator[list[int]]:
    """How many items DynamoDB returns to the code under test (Query Items, GetItem Item, write images)."""
    counts: list[int] = []

    def count(parsed: dict[str, Any], **_: Any) -> None:
        returned = len(parsed.get("Items", [])) + ("Item" in parsed) + ("Attributes" in parsed)
        returned += sum(1 for reason in parsed.get("CancellationReasons", []) if reason.get("Item"))
        counts.append(returned)

    events = dynamo.client().meta.events
    events.register("after-call.dynamodb", count)
    yield counts
    events.unregister("after-call.dynamodb", count)


class _SlowMachine:
    """`time` for hangar.core.clock on a machine so loaded that seeding takes `delay` seconds more."""

    def __init__(self) -> None:
        self.delay = 0.0

    def time(self) -> float:
        return time.time() + self.delay


def sweep_reads_only_the_stale(aws: AwsStack, returned_items: list[int], count: int, seeding_takes: float) -> None:
    org = unique_org()
    slow = _SlowMachine()
    with patch.object(clock, "time", slow), clock.frozen():
        # However long seeding takes on a loaded machine, the fresh runners stay fresh for the sweeps.
        runner_ids = seed_runners(aws, org, count, stale=10)
        slow.delay = seeding_takes
        returned_items.clear()
        summary = sweep()
        assert summary["runnersMarkedOffline"] == 10, summary
        assert summary["errors"] == 0, summary
        assert sum(returned_items) <= 3 * 10, (sum(returned_items), summary)
        assert sum(returned_items) == 10  # the stale index entries; the offline writes return nothing
        assert summary["itemsRead"] <= 3 * 10
        for runner_id in runner_ids[:10]:
            item = runner_item(org, runner_id)
            assert item["status"] == "offline"
            assert "liveShard" not in item
        assert "liveShard" in runner_item(org, runner_ids[10])
        # Again: nothing is stale any more, so nothing is read.
        returned_items.clear()
        assert sweep()["runnersMarkedOffline"] == 0
        assert sum(returned_items) == 0


@pytest.mark.slow
def test_sweep_reads_only_the_stale_runners_of_a_large_fleet(aws: AwsStack, returned_items: list[int]) -> None:
    sweep_reads_only_the_stale(aws, returned_items, 10_000, seeding_takes=0)


def test_a_seed_that_takes_longer_than_the_stale_cutoff_changes_nothing(
    aws: AwsStack, returned_items: list[int]
) -> None:
    """The large-fleet test once failed on a loaded machine: seeding 10,000 runners took longer than
    STALE_AFTER_SECONDS, so the fresh ones were stale by the sweep (issue 10, item 12)."""
    sweep_reads_only_the_stale(aws, returned_items, 50, seeding_takes=STALE + 60)


def test_a_heartbeat_between_read_and_write_keeps_the_runner_online(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    clock.advance(STALE + 10)
    stale = sweeper.find_stale_runners(clock.now())
    assert [entry.runner_id for entry in stale] == [runner]
    heartbeat(org, runner)  # lands after the sweeper read, before its conditional write
    summary = sweeper.SweepSummary()
    sweeper.take_runner_offline(stale[0], summary)
    assert summary.runnersMarkedOffline == 0
    assert summary.heartbeatsWon == 1
    item = runner_item(org, runner)
    assert item["status"] == "online"
    assert "liveShard" in item
    assert get_job(org, job["id"])["status"] == "assigned"
    assert item["currentJobs"] == 1


def test_lost_runner_job_goes_back_to_the_queue_and_another_runner_completes_it(org: str) -> None:
    lost = live_runner(org, ["linux"], name="lost")
    rescuer = live_runner(org, ["linux"], name="rescuer")
    job = new_job(org, labels=["linux"], maxAttempts=2)
    assert polled_job(org, lost, ["linux"])["_id"] == job["id"]  # type: ignore[index]
    report(org, lost, job["id"], "running")
    clock.advance(STALE + 5)
    heartbeat(org, rescuer)
    summary = sweep()
    assert summary["runnersMarkedOffline"] == 1, summary
    assert summary["jobsRequeued"] == 1, summary
    requeued = get_job(org, job["id"])
    assert requeued["status"] == "queued"
    assert requeued["runnerId"] is None
    assert requeued["attempts"] == 1
    assert runner_item(org, lost)["status"] == "offline"
    assert counters_are_zero(org, lost, rescuer)
    claimed = polled_job(org, rescuer, ["linux"])
    assert claimed is not None
    assert claimed["_id"] == job["id"]
    assert claimed["attempts"] == 2
    # The lost runner comes back and reports: the job is no longer its own.
    assert report(org, lost, job["id"], "completed")[0] == 404
    assert report(org, rescuer, job["id"], "completed", result={"ok": True})[0] == 200
    done = get_job(org, job["id"])
    assert done["status"] == "completed"
    assert done["runnerId"] == rescuer
    assert done["attempts"] == 2
    assert counters_are_zero(org, lost, rescuer)


def test_after_max_attempts_the_job_fails_runner_lost(org: str) -> None:
    first = live_runner(org, name="first")
    job = new_job(org, maxAttempts=1)
    polled_job(org, first)
    clock.advance(STALE + 5)
    summary = sweep()
    assert summary["jobsFailed"] == 1
    assert summary["jobsRequeued"] == 0
    failed = get_job(org, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "runner_lost"
    assert failed["attempts"] == 1
    assert counters_are_zero(org, first)


def test_requeued_job_keeps_its_place_in_the_queue(org: str) -> None:
    lost = live_runner(org, name="lost")
    older = new_job(org)
    polled_job(org, lost)
    newer = new_job(org)
    clock.advance(STALE + 5)
    rescuer = live_runner(org, name="rescuer")
    sweep()
    assert polled_job(org, rescuer)["_id"] == older["id"]  # type: ignore[index]
    assert get_job(org, newer["id"])["status"] == "queued"


def test_run_timeout_fails_the_job_and_frees_the_slot(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org, timeoutSeconds=60)
    polled_job(org, runner)
    report(org, runner, job["id"], "running")
    clock.advance(61)
    heartbeat(org, runner)  # the runner is alive: only the job's deadline passed
    summary = sweep()
    assert summary["jobsTimedOut"] == 1, summary
    assert summary["runnersMarkedOffline"] == 0, summary
    failed = get_job(org, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "timeout"
    assert counters_are_zero(org, runner)
    assert report(org, runner, job["id"], "completed")[0] == 409


def test_queue_timeout_expires_the_job(org: str) -> None:
    job = new_job(org, queueTimeoutSeconds=60)
    kept = new_job(org, queueTimeoutSeconds=600)
    clock.advance(61)
    summary = sweep()
    assert summary["jobsExpired"] == 1
    expired = get_job(org, job["id"])
    assert expired["status"] == "expired"
    assert expired["error"]["code"] == "queue_timeout"
    assert get_job(org, kept["id"])["status"] == "queued"
    runner = live_runner(org)
    assert polled_job(org, runner)["_id"] == kept["id"]  # type: ignore[index]


def test_requeued_job_gets_a_fresh_queue_deadline(org: str) -> None:
    lost = live_runner(org, name="lost")
    job = new_job(org, queueTimeoutSeconds=120)
    polled_job(org, lost)
    clock.advance(STALE + 60)  # past the job's first queue deadline
    sweep()
    assert get_job(org, job["id"])["status"] == "queued"
    clock.advance(121)
    sweep()
    assert get_job(org, job["id"])["status"] == "expired"


def test_sweeping_twice_is_harmless(org: str) -> None:
    lost = live_runner(org, name="lost")
    jobs = [new_job(org, queueTimeoutSeconds=3000) for _ in range(2)]
    polled_job(org, lost)
    clock.advance(STALE + 5)
    first = sweep()
    assert first["runnersMarkedOffline"] == 1
    assert first["jobsRequeued"] == 1
    second = sweep()
    assert second["runnersMarkedOffline"] == 0
    assert second["jobsRequeued"] == 0
    assert second["jobsExpired"] == 0
    assert second["errors"] == 0
    assert counters_are_zero(org, lost)
    assert {get_job(org, job["id"])["status"] for job in jobs} == {"queued"}


def test_mark_offline_recovers_the_runners_jobs(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    status, body, _ = invoke(
        "MarkRunnerOffline", user_event("MarkRunnerOffline", org, path_params={"runnerId": runner})
    )
    assert status == 200
    assert body["data"]["status"] == "offline"
    assert body["data"]["currentJobs"] == 0
    assert get_job(org, job["id"])["status"] == "queued"
    assert counters_are_zero(org, runner)
    # Offline runners claim nothing until they heartbeat again.
    assert polled_job(org, runner) is None
    heartbeat(org, runner)
    assert polled_job(org, runner)["attempts"] == 2  # type: ignore[index]


def test_delete_runner_recovers_its_jobs(org: str) -> None:
    runner = live_runner(org, name="doomed")
    requeued = new_job(org, maxAttempts=2)
    failing = new_job(org, maxAttempts=1)
    invoke(
        "UpdateRunner",
        user_event("UpdateRunner", org, path_params={"runnerId": runner}, body={"configuredConcurrency": 2}),
    )
    polled_job(org, runner)
    polled_job(org, runner)
    runner_count = org_item(org)["runnerCount"]
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner}))
    assert status == 200
    assert get_job(org, requeued["id"])["status"] == "queued"
    lost = get_job(org, failing["id"])
    assert lost["status"] == "failed"
    assert lost["error"]["code"] == "runner_lost"
    assert org_item(org)["activeJobs"] == 0
    assert org_item(org)["runnerCount"] == runner_count - 1
    assert sweep()["errors"] == 0


def test_a_runner_stored_before_held_jobs_existed_is_recovered_from_the_index(aws: AwsStack, org: str) -> None:
    """Runners written before `heldJobs` count their jobs but do not list them: the index completes them."""
    runner = live_runner(org)
    job = new_job(org)
    polled_job(org, runner)
    aws.dynamodb.update_item(
        TableName="RunnersTable",
        Key={"orgId": {"S": org}, "runnerId": {"S": runner}},
        UpdateExpression="REMOVE heldJobs",
    )
    clock.advance(STALE + 5)
    summary = sweep()
    assert summary["jobsRequeued"] == 1, summary
    assert summary["errors"] == 0, summary
    assert get_job(org, job["id"])["status"] == "queued"
    assert counters_are_zero(org, runner)


def test_after_an_outage_the_sweep_reads_bounded_pages_stops_in_time_and_the_next_sweep_continues(
    aws: AwsStack, returned_items: list[int]
) -> None:
    """Many runners stale at once (an outage): a sweep holds one page of index entries at a time, stops
    when its time is up, having read about what it took offline, and the next sweep goes on from there."""
    org = unique_org()
    stale = 3 * sweeper.PAGE_SIZE + 50
    with clock.frozen():
        runner_ids = seed_runners(aws, org, stale + 20, stale=stale)
        clock.advance(STALE + 120)  # now every runner is stale...
        for runner_id in runner_ids[stale:]:
            heartbeat_item_fresh(aws, org, runner_id)  # ...but these 20, which heartbeat again
        budget = sweeper.PAGE_SIZE + 30  # items the first sweep has time for (counted, not timed)
        returned_items.clear()
        first = sweeper.sweep(time_left=_items_allowed(budget))
        assert not first.complete, first
        assert first.runnersMarkedOffline == budget, first
        assert max(returned_items) <= sweeper.PAGE_SIZE  # no page larger than PAGE_SIZE entries
        assert first.itemsRead <= budget + sweeper.PAGE_SIZE  # read what it swept, plus one page at most
        second = sweeper.sweep()
        assert second.complete, second
        assert first.runnersMarkedOffline + second.runnersMarkedOffline == stale, second
    assert all(runner_item(org, runner_id)["status"] == "offline" for runner_id in runner_ids[:stale])
    assert all(runner_item(org, runner_id)["status"] == "online" for runner_id in runner_ids[stale:])


def _items_allowed(count: int) -> Any:
    """A `time_left` that says yes `count` times, then no (a sweep's time budget, in items)."""
    calls = iter(range(count))
    return lambda: next(calls, None) is not None


def heartbeat_item_fresh(aws: AwsStack, org: str, runner_id: str) -> None:
    now = clock.now()
    aws.dynamodb.update_item(
        TableName="RunnersTable",
        Key={"orgId": {"S": org}, "runnerId": {"S": runner_id}},
        UpdateExpression="SET lastHeartbeatEpoch = :now",
        ExpressionAttributeValues={":now": {"N": str(int(now))}},
    )


def test_the_shard_count_comes_from_the_index_shards_setting() -> None:
    settings = get_settings()
    with patch.object(settings, "index_shards", 64):
        shards = {live_shard(f"rnr_{index:06x}") for index in range(5_000)}
        assert shards == set(live_shards())
        assert len(shards) == 64
        from hangar.store import jobs as job_store

        assert {job_store.due_shard(f"job_{index:06x}") for index in range(5_000)} == set(job_store.due_shards())
        assert len(job_store.due_shards()) == 64
