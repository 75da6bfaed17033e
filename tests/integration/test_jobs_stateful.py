"""A Hypothesis state machine over the job lifecycle: create, poll, report, cancel, heartbeat, mark
offline, sweep and the clock moving, in any order. After every step the stored state must hold up:

- a job is held by at most one runner, and a poll only ever hands out a job that was queued;
- each runner's currentJobs and the org's activeJobs equal the jobs actually held, within limits;
- no job is lost: every job created is still there, queued, held or finished, with consistent indexes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hangar import clock
from hangar.models.jobs import ACTIVE_STATUSES, TERMINAL_STATUSES
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
from jobs_helpers import (
    cancel,
    create_runner,
    heartbeat,
    new_job,
    org_item,
    poll,
    report,
    runner_item,
    set_license,
    sweep,
)
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
    def __init__(self) -> None:
        super().__init__()
        self.org = unique_org()
        set_license(self.org, "team", concurrentJobLimit=CONCURRENT_JOB_LIMIT)
        self.runners: list[tuple[str, list[str], int]] = []
        for index, (labels, concurrency) in enumerate(RUNNERS):
            runner_id = create_runner(self.org, labels, concurrency, name=f"runner-{index}")
            heartbeat(self.org, runner_id)
            self.runners.append((runner_id, labels, concurrency))
        self.jobs: list[str] = []

    def teardown(self) -> None:
        clock.reset()

    def job(self, index: int) -> str | None:
        return self.jobs[index % len(self.jobs)] if self.jobs else None

    JOB_SPECS = st.lists(
        st.tuples(st.sampled_from(JOB_LABELS), st.integers(1, 3), st.none() | st.integers(0, 2)),
        min_size=1,
        max_size=3,
    )

    @initialize(specs=JOB_SPECS)
    def initial_jobs(self, specs: list[tuple[list[str], int, int | None]]) -> None:
        self.create(specs)

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
            assert code in (200, 409), body

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

    @rule()
    def sweep(self) -> None:
        assert sweep()["errors"] == 0

    @rule(seconds=st.sampled_from([5, 30, 95, 200]), alive=st.sets(st.integers(0, 2)))
    def advance_clock(self, seconds: int, alive: set[int]) -> None:
        """Time passes; the runners in `alive` heartbeat afterwards, the others may go stale."""
        clock.advance(seconds)
        for runner in sorted(alive):
            heartbeat(self.org, self.runners[runner][0])

    @invariant()
    def counters_match_the_jobs_held(self) -> None:
        jobs = stored_jobs(self.org)
        held = Counter(job["runnerId"] for job in jobs.values() if job["status"] in ACTIVE_STATUSES)
        for runner_id, _, concurrency in self.runners:
            current = runner_item(self.org, runner_id)["currentJobs"]
            assert current == held[runner_id], (runner_id, current, held)
            assert current <= concurrency
        active = sum(held.values())
        assert org_item(self.org)["activeJobs"] == active <= CONCURRENT_JOB_LIMIT

    @invariant()
    def no_job_is_lost(self) -> None:
        jobs = stored_jobs(self.org)
        assert set(jobs) == set(self.jobs)
        for job in jobs.values():
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


def test_job_lifecycle_keeps_its_invariants() -> None:
    with start_aws_stack():
        run_state_machine_as_test(
            JobLifecycle,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                database=None,
                # No shrinking: each step is a few moto calls, so shrinking a failure takes minutes; a
                # failing run prints its (at most 30) steps as they are.
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
