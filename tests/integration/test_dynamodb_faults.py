"""What real DynamoDB does and moto never does, injected at chosen calls (tests/faults.py): transaction
conflicts, throttling, lost responses after a commit, index lag, and a function dying between two writes.
Each test here is a defect of issue 10 that the suite could not see; each failed before its fix."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from builders import create_job, heartbeat, live_runner, new_job
from faults import WRITES, Conflict, Crash, DynamoFaults, FunctionCrashed, IndexLag, LostResponse, Throttled
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.store import dynamo, transactions
from hangar.store.transactions import Outcome, TransactionCancelled
from jobs_helpers import cancel, get_job, org_item, polled_job, report, runner_item, sweep
from support import ROOT, AwsStack, invoke, unique_org, user_event

RUNNERS = "RunnersTable"
ORGS = "OrgsTable"
JOBS = "JobsTable"
STALE = get_settings().stale_after_seconds


def counters(org: str, runner: str) -> tuple[int, int, list[str]]:
    item = runner_item(org, runner)
    return item["currentJobs"], org_item(org)["activeJobs"], sorted(item.get("heldJobs") or [])


def held_job(org: str, labels: list[str] | None = None, concurrency: int = 1) -> tuple[str, str]:
    runner = live_runner(org, labels, concurrency)
    job = new_job(org, labels=labels or [])
    assert polled_job(org, runner, labels) is not None
    return runner, job["id"]


# -- item 2: a conflict is not a deleted runner, and not a job gone -----------------------------------


def test_a_cancel_whose_runner_write_conflicts_still_frees_the_slot(org: str) -> None:
    """Was: the conflict's missing item read as "runner deleted", the retry dropped currentJobs - 1 and the
    runner never claimed again."""
    runner, job = held_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(RUNNERS), times=1)
        status, body = cancel(org, job)
    assert status == 200, body
    assert body["status"] == "cancelled", body
    assert faults.injected == [("TransactWriteItems", "Conflict")]
    assert counters(org, runner) == (0, 0, [])
    assert runner_item(org, runner)["cancelledJobs"] == [job]
    new_job(org)
    assert polled_job(org, runner) is not None  # the slot is really free


def test_a_timeout_whose_runner_write_conflicts_still_frees_the_slot(org: str) -> None:
    runner, job = held_job(org)
    clock.advance(get_job(org, job)["timeoutSeconds"] + 1)
    heartbeat(org, runner)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(RUNNERS), times=1)
        summary = sweep()
    assert summary["jobsTimedOut"] == 1, summary
    assert summary["errors"] == 0, summary
    assert counters(org, runner) == (0, 0, [])


def test_a_lost_runners_recovery_whose_runner_write_conflicts_still_frees_the_slot(org: str) -> None:
    runner, job = held_job(org)
    clock.advance(STALE + 5)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(RUNNERS), times=1)
        summary = sweep()
    assert summary["jobsRequeued"] == 1, summary
    assert summary["errors"] == 0, summary
    assert get_job(org, job)["status"] == "queued"
    assert counters(org, runner) == (0, 0, [])


def test_a_recovery_whose_org_write_conflicts_is_retried_not_stranded(org: str) -> None:
    """Was: re-raised after the runner was already offline, leaving the job held until its run timeout."""
    runner, job = held_job(org)
    clock.advance(STALE + 5)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(ORGS), times=1)
        summary = sweep()
    assert summary["jobsRequeued"] == 1, summary
    assert summary["errors"] == 0, summary
    assert get_job(org, job)["status"] == "queued"
    assert counters(org, runner) == (0, 0, [])


def test_a_claim_whose_runner_write_conflicts_is_retried_not_skipped(org: str) -> None:
    """Was: any conflict counted as "job gone", so the only queued job was skipped and the poll empty."""
    runner = live_runner(org)
    job = new_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(RUNNERS), times=1)
        claimed = polled_job(org, runner)
    assert claimed is not None
    assert claimed["_id"] == job["id"]
    assert counters(org, runner) == (1, 1, [job["id"]])


def test_a_status_report_that_keeps_conflicting_is_a_clean_409(org: str) -> None:
    runner, job = held_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(JOBS), times=None)
        status, body = report(org, runner, job, "completed")
    assert status == 409, body
    assert body["error"]["code"] == "concurrent_update", body
    assert get_job(org, job)["status"] == "assigned"
    assert counters(org, runner) == (1, 1, [job])


def test_single_writes_that_meet_a_transaction_are_retried(org: str) -> None:
    """TransactionConflictException on an UpdateItem is not retried by botocore; hangar's client is."""
    runner = live_runner(org)
    with DynamoFaults.installed() as faults:
        faults.inject("UpdateItem", Conflict(), times=3)
        assert heartbeat(org, runner)["status"] == "online"
    assert faults.injected == [("UpdateItem", "Conflict")] * 3


def test_throttling_is_absorbed(org: str) -> None:
    runner = live_runner(org)
    job = new_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject(None, Throttled(), times=4)
        assert polled_job(org, runner) is not None
        assert report(org, runner, job["id"], "completed")[0] == 200
    assert len(faults.injected) == 4
    assert counters(org, runner) == (0, 0, [])


def test_cancellation_reasons_are_classified_once() -> None:
    cancelled = TransactionCancelled(
        {
            name: transactions._reason_outcome(reason)
            for name, reason in {
                "ok": {"Code": "None"},
                "with item": {"Code": "ConditionalCheckFailed", "Item": {"id": {"S": "x"}}},
                "no item": {"Code": "ConditionalCheckFailed"},
                "conflict": {"Code": "TransactionConflict"},
                "throttled": {"Code": "ThrottlingError"},
                "other": {"Code": "ValidationError"},
            }.items()
        }
    )
    assert [o.outcome for o in cancelled.outcomes.values()] == [
        Outcome.OK,
        Outcome.CONDITION_FAILED,
        Outcome.ITEM_MISSING,
        Outcome.CONFLICT,
        Outcome.THROTTLED,
        Outcome.OTHER,
    ]
    assert cancelled["with item"].item == {"id": "x"}
    assert cancelled["no item"].missing
    assert not cancelled["conflict"].missing  # a conflict returns no item, and is not a missing item
    assert not cancelled.conflict  # a condition said no: retrying would not help


DOMAIN = ROOT / "layers" / "hangar" / "hangar"


@pytest.mark.parametrize(
    "module", sorted(path for path in DOMAIN.rglob("*.py") if "store" not in path.relative_to(DOMAIN).parts)
)
def test_no_domain_module_touches_botocore(module: Path) -> None:
    """Only `hangar.store` speaks DynamoDB: the domain reads outcomes, never botocore errors or reasons."""
    tree = ast.parse(module.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.split(".")[0] in ("botocore", "boto3")], module
    assert "CancellationReasons" not in module.read_text(), module


# -- item 7: a response lost after the write committed -------------------------------------------------


def test_a_claim_whose_responses_are_all_lost_still_reaches_the_runner(org: str) -> None:
    """Was: once botocore's attempts were used up, the poll failed while the claim had committed, and the
    runner never learnt of the job it held. The transaction's ClientRequestToken is replayed until its
    outcome is known (DynamoDB answers a replay of a committed transaction with success, writing nothing)."""
    runner = live_runner(org)
    job = new_job(org)
    attempts = dynamo.client().meta.config.retries["total_max_attempts"]
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", LostResponse(), times=attempts)
        claimed = polled_job(org, runner)
    assert claimed is not None
    assert claimed["_id"] == job["id"]
    assert faults.replayed == attempts  # every attempt after the first was the same token, replayed
    assert get_job(org, job["id"])["attempts"] == 1  # claimed once, not once per replay
    assert counters(org, runner) == (1, 1, [job["id"]])


def test_a_report_whose_response_is_lost_is_not_counted_twice(org: str) -> None:
    runner, job = held_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", LostResponse(), times=1)
        assert report(org, runner, job, "completed", result={"ok": True})[0] == 200
    assert faults.replayed == 1
    assert counters(org, runner) == (0, 0, [])
    assert runner_item(org, runner)["jobsCompleted"] == 1


def test_a_job_created_whose_response_is_lost_is_created_once(org: str) -> None:
    """Was a 500: botocore's retry of the PutItem found the job its first attempt had stored."""
    with DynamoFaults.installed() as faults:
        faults.inject("PutItem", LostResponse(), when=lambda call: call.touches(JOBS), times=1)
        status, body, _ = create_job(org)
    assert status == 201, body
    status, listed, _ = invoke("ListJobs", user_event("ListJobs", org))
    assert [job["id"] for job in listed["jobs"]] == [body["id"]]


def test_a_stale_runners_offline_write_whose_response_is_lost_still_recovers_its_job(org: str) -> None:
    """Was: the retried offline write failed its own condition, read as "a heartbeat won", and the job
    stayed held by an offline runner until its run timeout."""
    runner, job = held_job(org)
    clock.advance(STALE + 5)
    with DynamoFaults.installed() as faults:
        faults.inject(None, LostResponse(), when=lambda call: call.operation in WRITES and call.touches(RUNNERS))
        summary = sweep()
    assert summary["runnersMarkedOffline"] == 1, summary
    assert summary["jobsRequeued"] == 1, summary
    assert get_job(org, job)["status"] == "queued"
    assert counters(org, runner) == (0, 0, [])


# -- items 6 and 8: nothing stranded by a crash or by index lag ---------------------------------------


def _deletes_the_runner(call: Any) -> bool:
    return any(kind == "Delete" and params["TableName"] == RUNNERS for kind, params in call.items())


def _takes_the_runner_offline(call: Any) -> bool:
    return any(
        params.get("TableName") == RUNNERS
        and "liveShard" in str(params.get("UpdateExpression", "")).split("REMOVE")[-1]
        for kind, params in call.items()
        if kind in ("Update", "UpdateItem")
    )


def test_a_delete_that_dies_after_removing_the_runner_strands_no_job(org: str) -> None:
    """Was two steps: a crash after the runner's deletion left its jobs held by a runner nobody sweeps."""
    runner, job = held_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject(None, Crash(), when=_deletes_the_runner)
        with pytest.raises(FunctionCrashed):
            invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner}))
    clock.advance(STALE + 5)
    sweep()
    assert get_job(org, job)["status"] == "queued"
    assert org_item(org)["activeJobs"] == 0
    assert org_item(org)["runnerCount"] == 0


@pytest.mark.parametrize("how", ["sweeper", "mark-offline"])
def test_going_offline_and_dying_before_the_recovery_strands_no_job(org: str, how: str) -> None:
    """The same two steps, for the sweeper and mark-offline: offline first, then the recovery."""
    runner, job = held_job(org)
    if how == "sweeper":
        clock.advance(STALE + 5)
    with DynamoFaults.installed() as faults:
        faults.inject(None, Crash(), when=_takes_the_runner_offline)
        with pytest.raises(FunctionCrashed):
            if how == "sweeper":
                sweep()
            else:
                invoke("MarkRunnerOffline", user_event("MarkRunnerOffline", org, path_params={"runnerId": runner}))
    clock.advance(STALE + 5)
    sweep()
    assert get_job(org, job)["status"] == "queued"
    assert counters(org, runner) == (0, 0, [])


@pytest.mark.parametrize("how", ["sweeper", "mark-offline", "delete"])
def test_recovery_does_not_depend_on_the_lagging_active_index(org: str, how: str) -> None:
    """Was: a runner's jobs were found only through the ActiveByRunner index, which lags its table."""
    runner, job = held_job(org)
    with DynamoFaults.installed() as faults:
        faults.inject("Query", IndexLag(), when=lambda call: call.body.get("IndexName") == "ActiveByRunner", times=None)
        if how == "sweeper":
            clock.advance(STALE + 5)
            assert sweep()["jobsRequeued"] == 1
        else:
            logical_id = "MarkRunnerOffline" if how == "mark-offline" else "DeleteRunner"
            status, body, _ = invoke(logical_id, user_event(logical_id, org, path_params={"runnerId": runner}))
            assert status == 200, body
    assert get_job(org, job)["status"] == "queued"
    assert org_item(org)["activeJobs"] == 0


@pytest.mark.parametrize("logical_id", ["ListRunners", "ListRunnersWithReadiness", "ListJobs", "ListTargets"])
def test_lists_read_their_own_writes(aws: AwsStack, logical_id: str) -> None:
    """Were eventually consistent: a runner, job or target just created could be missing from its list."""
    queries: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and "IndexName" not in params:
            queries.append(params)

    events = dynamo.client().meta.events
    events.register("provide-client-params.dynamodb.Query", record)
    try:
        status, body, _ = invoke(logical_id, user_event(logical_id, unique_org()))
    finally:
        events.unregister("provide-client-params.dynamodb.Query", record)
    assert status == 200, body
    assert queries, queries
    assert all(query.get("ConsistentRead") is True for query in queries), queries
