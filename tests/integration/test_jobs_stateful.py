"""A Hypothesis state machine over the job lifecycle: create, poll, report, cancel, heartbeat, mark
offline, delete and replace a runner, sweep and the clock moving, in any order. After every step the
stored state must hold up:

- a job is held by at most one runner (one that exists), and a poll only hands out a job that was queued;
- each runner's currentJobs and heldJobs, and the org's activeJobs, equal the jobs actually held;
- no job is lost: every job created is still there, queued, held or finished, with consistent indexes.

It runs twice: on moto as it is, and with DynamoDB's faults on (tests/faults.py): transaction conflicts,
throttling and lost responses at random calls, and concurrent requests landing between a request's read
and its write (so its conditions fail for real, on the item as the other request left it).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, ClassVar

from builders import create_runner, heartbeat, new_job, set_license
from faults import WRITES, DynamoFaults, LostResponse, Race, transient_faults
from hangar.core import clock
from hangar.core.errors import HangarError
from hangar.fleet import heartbeat as heartbeat_domain
from hangar.fleet import runners
from hangar.fleet.models.heartbeat import HeartbeatRequest
from hangar.identity.auth import RunnerPrincipal
from hangar.jobs import claims as job_claims
from hangar.jobs import service as jobs
from hangar.jobs.models.jobs import ACTIVE_STATUSES, TERMINAL_STATUSES
from hangar.store import dynamo
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from jobs_helpers import cancel, org_item, poll, report, runner_item, sweep
from support import invoke, start_aws_stack, unique_org, user_event

RUNNERS = [(["linux"], 1), (["linux", "gpu"], 2), (["arm"], 1)]
JOB_LABELS = [[], ["linux"], ["linux", "gpu"], ["arm"]]
CONCURRENT_JOB_LIMIT = 2


def stored_jobs(org: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {
        "TableName": "JobsTable",
        "KeyConditionExpression": "orgId = :org",
        "ExpressionAttributeValues": {":org": {"S": org}},
        "ConsistentRead": True,
    }
    while True:
        response = dynamo.client().query(**params)
        for raw in response["Items"]:
            item = dynamo.from_item(raw)
            assert item is not None
            items[item["jobId"]] = item
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class JobLifecycle(RuleBasedStateMachine):
    faults: ClassVar[DynamoFaults | None] = None

    def __init__(self) -> None:
        super().__init__()
        if self.faults is not None:
            self.faults.clear()  # set-up runs without faults; `initial_jobs` turns them on
        self.org = unique_org()
        set_license(self.org, "team", concurrentJobLimit=CONCURRENT_JOB_LIMIT)
        self.runners: list[tuple[str, list[str], int]] = []
        for index, (labels, concurrency) in enumerate(RUNNERS):
            runner_id = create_runner(self.org, f"runner-{index}", labels, concurrency)["_id"]
            heartbeat(self.org, runner_id)
            self.runners.append((runner_id, labels, concurrency))
        self.jobs: list[str] = []

    def teardown(self) -> None:
        if self.faults is not None:
            self.faults.clear()
        clock.reset()

    def job(self, index: int) -> str | None:
        return self.jobs[index % len(self.jobs)] if self.jobs else None

    JOB_SPECS = st.lists(
        st.tuples(st.sampled_from(JOB_LABELS), st.integers(1, 3), st.none() | st.integers(0, 2)),
        min_size=1,
        max_size=3,
    )

    @initialize(specs=JOB_SPECS, seed=st.integers(0, 2**32 - 1))
    def initial_jobs(self, specs: list[tuple[list[str], int, int | None]], seed: int) -> None:
        self.create(specs)
        if self.faults is not None:
            self.faults.random_faults = transient_faults(random.Random(seed))
            # Besides the random faults: the next transactions' responses are lost after they reached
            # DynamoDB, so every run replays committed ones (random faults alone may hit none of them).
            self.faults.inject("TransactWriteItems", LostResponse(), times=3)

    @rule(specs=JOB_SPECS)
    def create(self, specs: list[tuple[list[str], int, int | None]]) -> None:
        for labels, max_attempts, pin in specs:
            fields: dict[str, Any] = {
                "labels": labels,
                "maxAttempts": max_attempts,
                "timeoutSeconds": 300,
                "queueTimeoutSeconds": 1200,
            }
            if pin is not None and set(labels) <= set(self.runners[pin][1]):
                fields["runnerId"] = self.runners[pin][0]
            self.jobs.append(new_job(self.org, **fields)["id"])

    @rule(runner=st.integers(0, 2))
    def poll(self, runner: int) -> None:
        self.poll_as(runner)

    @rule()
    def poll_every_runner(self) -> None:
        for runner in range(len(self.runners)):
            self.poll_as(runner)

    def poll_as(self, runner: int) -> None:
        runner_id, labels, _ = self.runners[runner]
        before = stored_jobs(self.org)
        status, body = poll(self.org, runner_id, labels)
        assert status == 200, body
        job = body["data"]["job"]
        if job is None:
            return
        # Handed out only if it was queued, runnable by this runner, and pinned to it if pinned at all.
        previous = before[job["_id"]]
        assert previous["status"] == "queued", previous
        assert set(previous["labels"]) <= set(labels)
        assert previous.get("pinnedRunnerId") in (None, runner_id)
        assert job["attempts"] == previous["attempts"] + 1 <= previous["maxAttempts"]

    @precondition(lambda self: bool(self.jobs))
    @rule(runner=st.integers(0, 2), job=st.integers(0, 50), status=st.sampled_from(["running", "completed", "failed"]))
    def report(self, runner: int, job: int, status: str) -> None:
        job_id = self.job(job)
        if job_id is None:
            return
        code, body = report(self.org, self.runners[runner][0], job_id, status)
        assert code in (200, 404, 409), body

    @precondition(lambda self: bool(self.jobs))
    @rule(job=st.integers(0, 50), status=st.sampled_from(["running", "completed", "failed"]))
    def report_by_holder(self, job: int, status: str) -> None:
        """A report from the runner that holds the job (random reports mostly miss)."""
        job_id = self.job(job)
        if job_id is None:
            return
        holder = stored_jobs(self.org)[job_id].get("runnerId")
        if holder is not None:
            code, body = report(
                self.org, holder, job_id, status, **({"result": {"ok": True}} if status != "running" else {})
            )
            if holder not in {runner_id for runner_id, _, _ in self.runners}:
                # A finished job keeps the runner that ran it, which may have been deleted since.
                assert code == 401 and body["error"]["code"] == "runner_deleted", body
            else:
                # 404: a request racing this one (under faults) requeued the job first.
                assert code in ((200, 409, 404) if self.faults else (200, 409)), body

    @precondition(lambda self: bool(self.jobs))
    @rule(job=st.integers(0, 50))
    def cancel(self, job: int) -> None:
        job_id = self.job(job)
        if job_id is None:
            return
        code, body = cancel(self.org, job_id)
        assert code in (200, 409), body
        if code == 200:
            assert body["status"] == "cancelled"

    @rule(runner=st.integers(0, 2))
    def mark_offline(self, runner: int) -> None:
        event = user_event("MarkRunnerOffline", self.org, path_params={"runnerId": self.runners[runner][0]})
        status, body, _ = invoke("MarkRunnerOffline", event)
        assert status == 200, body

    @rule(runner=st.integers(0, 2))
    def delete_and_replace_runner(self, runner: int) -> None:
        """The runner is deleted (its jobs go back to the queue in the same write) and a new one takes its
        place; the old token is refused at once."""
        old_id, labels, concurrency = self.runners[runner]
        event = user_event("DeleteRunner", self.org, path_params={"runnerId": old_id})
        status, body, _ = invoke("DeleteRunner", event)
        assert status == 200, body
        status, body = poll(self.org, old_id, labels)
        assert status == 401 and body["error"]["code"] == "runner_deleted", body
        new_id = create_runner(self.org, f"runner-{runner}", labels, concurrency)["_id"]
        heartbeat(self.org, new_id)
        self.runners[runner] = (new_id, labels, concurrency)

    @rule()
    def sweep(self) -> None:
        assert sweep()["errors"] == 0

    @rule(seconds=st.sampled_from([5, 30, 95, 200]), alive=st.sets(st.integers(0, 2)))
    def advance_clock(self, seconds: int, alive: set[int]) -> None:
        """Time passes; the runners in `alive` heartbeat afterwards, the others may go stale."""
        clock.advance(seconds)
        for runner in sorted(alive):
            heartbeat(self.org, self.runners[runner][0])

    # -- concurrent requests (under faults only) -------------------------------------------------------

    def _racing(self, action: str, job: int, runner: int) -> None:
        """Another request, run between the read and the write of the request in flight. It may be
        refused (its own 4xx); what matters is what it leaves behind."""
        runner_id, labels, _ = self.runners[runner]
        principal = RunnerPrincipal(self.org, runner_id, 1, "", tuple(labels))
        job_id = self.job(job)
        try:
            if action == "cancel" and job_id:
                jobs.cancel_job(self.org, job_id)
            elif action == "heartbeat":
                heartbeat_domain.record_heartbeat(principal, HeartbeatRequest(status="online"))
            elif action == "mark_offline":
                runners.mark_offline(self.org, runner_id)
            elif action == "poll":
                job_claims.poll_for_job(principal)
            elif action == "complete" and job_id:
                job_claims.report_status(principal, job_id, "completed", {"raced": True})
        except HangarError:
            pass

    @precondition(lambda self: self.faults is not None)
    @rule(
        action=st.sampled_from(["cancel", "heartbeat", "mark_offline", "poll", "complete"]),
        job=st.integers(0, 50),
        runner=st.integers(0, 2),
    )
    def race_the_next_write(self, action: str, job: int, runner: int) -> None:
        assert self.faults is not None
        self.faults.inject(
            None, Race(lambda: self._racing(action, job, runner)), when=lambda call: call.operation in WRITES
        )

    # -- invariants -------------------------------------------------------------------------------------

    @invariant()
    def counters_match_the_jobs_held(self) -> None:
        with self._no_faults():
            jobs_now = stored_jobs(self.org)
            held = Counter(job["runnerId"] for job in jobs_now.values() if job["status"] in ACTIVE_STATUSES)
            held_ids: dict[str, set[str]] = {}
            for job in jobs_now.values():
                if job["status"] in ACTIVE_STATUSES:
                    held_ids.setdefault(job["runnerId"], set()).add(job["jobId"])
            # Only runners that exist hold jobs (a deleted runner's jobs left with it).
            assert set(held) <= {runner_id for runner_id, _, _ in self.runners}, (held, self.runners)
            for runner_id, _, concurrency in self.runners:
                item = runner_item(self.org, runner_id)
                current = item["currentJobs"]
                assert current == held[runner_id], (runner_id, current, held)
                assert set(item.get("heldJobs") or []) == held_ids.get(runner_id, set()), (item, held_ids)
                assert current <= concurrency
                if item["status"] == "offline":
                    assert current == 0, item  # a runner goes offline together with its jobs' recovery
            active = sum(held.values())
            assert org_item(self.org)["activeJobs"] == active <= CONCURRENT_JOB_LIMIT

    def _no_faults(self) -> Any:
        from contextlib import nullcontext

        return self.faults.paused() if self.faults is not None else nullcontext()

    @invariant()
    def no_job_is_lost(self) -> None:
        with self._no_faults():
            stored = stored_jobs(self.org)
        assert set(stored) == set(self.jobs)
        for job in stored.values():
            status = job["status"]
            assert status == "queued" or status in ACTIVE_STATUSES or status in TERMINAL_STATUSES
            assert job["attempts"] <= job["maxAttempts"]
            if status == "queued":
                assert job["attempts"] < job["maxAttempts"]  # a job out of attempts is never requeued
            assert ("queuedAt" in job) == (status == "queued") == ("queueOrg" in job)
            if status in ACTIVE_STATUSES:
                # Exactly one runner, and the index that recovers it says the same.
                assert job["runnerKey"] == f"{self.org}#{job['runnerId']}"
            else:
                assert "runnerKey" not in job
            assert ("dueAt" in job) == (status not in TERMINAL_STATUSES)


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    database=None,
    # No shrinking: each step is a few moto calls, so shrinking a failure takes minutes; a failing run
    # prints its (at most 30) steps as they are.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


def test_job_lifecycle_keeps_its_invariants() -> None:
    with start_aws_stack():
        run_state_machine_as_test(JobLifecycle, settings=SETTINGS)


class JobLifecycleUnderFaults(JobLifecycle):
    pass


def test_job_lifecycle_keeps_its_invariants_with_dynamodb_faults_on() -> None:
    with start_aws_stack(), DynamoFaults.installed() as faults:
        JobLifecycleUnderFaults.faults = faults
        try:
            # Fewer examples: each step is several times the calls (retries, replays, racing requests).
            run_state_machine_as_test(JobLifecycleUnderFaults, settings=settings(SETTINGS, max_examples=15))
        finally:
            JobLifecycleUnderFaults.faults = None
    kinds = Counter(kind for _, kind in faults.injected)
    # The run really met every kind of fault (hundreds in all), so the invariants held under them.
    assert {"Conflict", "Throttled", "LostResponse", "Race"} <= set(kinds), kinds
    assert sum(kinds.values()) >= 100 and faults.replayed > 0, (kinds, faults.replayed)
