"""The store's typed records: built from an item once, and back to the same item shape for a write."""

from __future__ import annotations

from typing import Any

import pytest
from hangar.store import dynamo
from hangar.store.api_keys import ApiKey
from hangar.store.jobs import Job
from hangar.store.orgs import Org
from hangar.store.records import Record
from hangar.store.runners import Runner
from hangar.store.targets import Target
from hangar.store.tokens import RunnerToken
from hangar.store.webhooks import Delivery, Webhook


def through_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    """The item as DynamoDB would give it back (wire format and back, numbers as Decimal and back)."""
    stored = dynamo.from_item(dynamo.to_item(item))
    assert stored is not None
    return stored


RECORDS: list[Record] = [
    Runner(org_id="org_a", runner_id="rnr_0000000000000001"),
    Runner(
        org_id="org_a",
        runner_id="rnr_0000000000000002",
        name="builder",
        labels=("linux", "x64"),
        status="online",
        configured_concurrency=3,
        current_jobs=2,
        jobs_completed=7,
        token_id="hgr_abc",
        token_version=4,
        setup_token="ciphertext",
        version="1.2.3",
        container_engine="docker",
        system_info={"cpu": 4, "memory": 1024},
        capabilities={"gpu": False},
        provider_state={"zone": "a"},
        last_heartbeat_at="2026-12-01T00:00:00.000Z",
        last_heartbeat_epoch=1764547200.25,
        live_shard="live#3",
        held_jobs=frozenset({"job_1", "job_2"}),
        cancelled_jobs=frozenset({"job_2"}),
        created_at="2026-11-30T00:00:00.000Z",
        updated_at="2026-12-01T00:00:00.000Z",
    ),
    ApiKey(token_id="0123456789abcdef"),
    ApiKey(
        token_id="0123456789abcdef",
        name="ci",
        scopes=("jobs:read", "runners:read"),
        created_at="2026-12-01T00:00:00.000Z",
        created_by="user-1",
        last_used_at="2026-12-01T01:00:00.000Z",
        org_id="org_a",
        api_key_org="org_a",
        hash="hmac",
    ),
    Job(
        org_id="org_a",
        job_id="job_0190000000001234abcd",
        type="scan",
        status="queued",
        timeout_seconds=3600,
        queue_timeout_seconds=86400,
        created_at="2026-12-01T00:00:00.000Z",
        updated_at="2026-12-01T00:00:00.000Z",
    ),
    Job(
        org_id="org_a",
        job_id="job_0190000000001234abce",
        type="scan",
        status="cancelled",
        timeout_seconds=600,
        queue_timeout_seconds=120,
        created_at="2026-12-01T00:00:00.000Z",
        updated_at="2026-12-01T00:05:00.000Z",
        repository_config="abc123",
        repository_name="infra",
        branch="main",
        target_id="tgt_1",
        labels=("linux", "gpu"),
        pinned_runner_id="rnr_1",
        payload_json='{"depth":2}',
        max_attempts=3,
        attempts=2,
        runner_id="rnr_1",
        runner_key="org_a#rnr_1",
        assigned_at="2026-12-01T00:01:00.000Z",
        started_at="2026-12-01T00:02:00.000Z",
        finished_at="2026-12-01T00:05:00.000Z",
        result_json='{"ok":true}',
        error={"code": "job_failed", "message": "boom"},
        cancel_requested=True,
        queue_sort_key="2026-12-01T00:00:00.000Z#job_0190000000001234abce",
        queue_org="org_a",
        queued_at="2026-12-01T00:00:00.000Z#job_0190000000001234abce",
        due_shard="due#3",
        due_at=1764547800,
        log_attempt=2,
        log_next_seq=5,
        log_bytes=1234,
        log_truncated=True,
        log_expires_at_epoch=1767139200,
        artifact_count=2,
    ),
    Org(org_id="org_a"),
    Org(
        org_id="org_a",
        plan="team",
        license_state="suspended",
        overrides={"runnerLimit": 3, "allowedTargetVisibilities": ["public"]},
        license_version=2,
        runner_limit=3,
        concurrent_job_limit=10,
        runner_count=2,
        active_jobs=1,
        target_count=4,
        usage_key_id="k1",
        usage_key="value",
        usage_key_shared=False,
        created_at="2026-11-30T00:00:00.000Z",
        updated_at="2026-12-01T00:00:00.000Z",
    ),
    Target(
        org_id="org_a",
        target_id="tgt_1",
        name="prod",
        url="https://example.com",
        visibility="public",
        created_at="2026-12-01T00:00:00.000Z",
        sk="TARGET#tgt_1",
    ),
    Webhook(
        org_id="org_a",
        webhook_id="whk_1",
        url="https://hooks.example.com/h",
        secret_ciphertext="ciphertext",
        created_at="2026-12-01T00:00:00.000Z",
        events=("job.completed", "runner.offline"),
        description="ops",
        sk="WEBHOOK#whk_1",
    ),
    Delivery(
        org_id="org_a",
        delivery_id="dlv_1",
        webhook_id="whk_1",
        event_id="evt_1",
        event_type="ping",
        payload='{"id":"evt_1"}',
        status="failed",
        created_at="2026-12-01T00:00:00.000Z",
        attempts=2,
        next_attempt_at="2026-12-01T00:02:00.000Z",
        next_attempt_epoch=1764547320.5,
        last_attempt_at="2026-12-01T00:01:00.000Z",
        last_status_code=500,
        last_error="HTTP 500",
        attempt_history=({"at": "2026-12-01T00:00:30.000Z", "statusCode": None, "error": "timeout"},),
        expires_at_epoch=1767139200,
        sk="DELIVERY#whk_1#dlv_1",
    ),
]

# Items as the store has always written them: a record built from one gives exactly it back.
QUEUED_JOB_ITEM: dict[str, Any] = {
    "orgId": "org_a",
    "jobId": "job_0190000000001234abcd",
    "type": "scan",
    "repositoryConfig": "abc123",
    "labels": ["linux"],
    "timeoutSeconds": 3600,
    "queueTimeoutSeconds": 86400,
    "maxAttempts": 3,
    "attempts": 0,
    "status": "queued",
    "createdAt": "2026-12-01T00:00:00.000Z",
    "updatedAt": "2026-12-01T00:00:00.000Z",
    "queueSortKey": "2026-12-01T00:00:00.000Z#job_0190000000001234abcd",
    "queueOrg": "org_a",
    "queuedAt": "2026-12-01T00:00:00.000Z#job_0190000000001234abcd",
    "dueShard": "due#1",
    "dueAt": 1764633600,
}
RUNNING_JOB_ITEM: dict[str, Any] = {
    **{key: value for key, value in QUEUED_JOB_ITEM.items() if key not in ("queueOrg", "queuedAt")},
    "status": "running",
    "attempts": 1,
    "runnerId": "rnr_1",
    "runnerKey": "org_a#rnr_1",
    "assignedAt": "2026-12-01T00:01:00.000Z",
    "startedAt": "2026-12-01T00:01:05.000Z",
    "logAttempt": 1,
    "logNextSeq": 3,
    "logBytes": 2048,
    "logExpiresAtEpoch": 1767139200,
    "artifactCount": 1,
}
NEW_ORG_ITEM: dict[str, Any] = {
    "orgId": "org_a",
    "sk": "ORG",
    "plan": "free",
    "licenseState": "active",
    "runnerCount": 0,
    "activeJobs": 0,
    "targetCount": 0,
    "createdAt": "2026-12-01T00:00:00.000Z",
    "runnerLimit": 2,
    "concurrentJobLimit": 1,
}
LICENSED_ORG_ITEM: dict[str, Any] = {
    **NEW_ORG_ITEM,
    "plan": "team",
    "overrides": {},
    "licenseVersion": 1,
    "runnerLimit": 10,
    "concurrentJobLimit": 10,
    "usageKeyId": "k1",
    "usageKey": "value",
    "usageKeyShared": True,
    "updatedAt": "2026-12-01T01:00:00.000Z",
}
TARGET_ITEM: dict[str, Any] = {
    "orgId": "org_a",
    "sk": "TARGET#tgt_1",
    "targetId": "tgt_1",
    "name": "prod",
    "url": "https://example.com",
    "visibility": "private_internal",
    "createdAt": "2026-12-01T00:00:00.000Z",
}
NEW_DELIVERY_ITEM: dict[str, Any] = {
    "orgId": "org_a",
    "deliveryId": "dlv_0190000000001234abcdef",
    "webhookId": "whk_1",
    "eventId": "evt_1",
    "eventType": "job.completed",
    "payload": '{"id":"evt_1","type":"job.completed"}',
    "status": "pending",
    "attempts": 0,
    "createdAt": "2026-12-01T00:00:00.000Z",
    "nextAttemptAt": "2026-12-01T00:00:00.000Z",
    "nextAttemptEpoch": 1764547200.123,
    "expiresAtEpoch": 1767139200,
    "sk": "DELIVERY#whk_1#dlv_0190000000001234abcdef",
}
ATTEMPTED_DELIVERY_ITEM: dict[str, Any] = {
    **NEW_DELIVERY_ITEM,
    "status": "succeeded",
    "attempts": 1,
    "lastAttemptAt": "2026-12-01T00:00:01.000Z",
    "lastStatusCode": 204,
    "attemptHistory": [{"at": "2026-12-01T00:00:01.000Z", "statusCode": 204, "error": None}],
}
WEBHOOK_ITEM: dict[str, Any] = {
    "orgId": "org_a",
    "webhookId": "whk_1",
    "url": "https://hooks.example.com/h",
    "events": ["*"],
    "secretCiphertext": "ciphertext",
    "createdAt": "2026-12-01T00:00:00.000Z",
    "sk": "WEBHOOK#whk_1",
}
RUNNER_TOKEN_ITEM: dict[str, Any] = {
    "tokenId": "0123456789ab",
    "kind": "runner",
    "hash": "hmac",
    "orgId": "org_a",
    "runnerId": "rnr_1",
    "tokenVersion": 2,
    "labels": ["linux"],
    "usageKey": "value",
    "createdAt": "2026-12-01T00:00:00.000Z",
}
ITEMS: list[tuple[type[Record], dict[str, Any]]] = [
    (RunnerToken, RUNNER_TOKEN_ITEM),
    (RunnerToken, {key: value for key, value in RUNNER_TOKEN_ITEM.items() if key != "usageKey"}),
    (Webhook, WEBHOOK_ITEM),
    (Delivery, NEW_DELIVERY_ITEM),
    (Delivery, ATTEMPTED_DELIVERY_ITEM),
    (Job, QUEUED_JOB_ITEM),
    (Job, RUNNING_JOB_ITEM),
    (Org, NEW_ORG_ITEM),
    (Org, LICENSED_ORG_ITEM),
    (Target, TARGET_ITEM),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: type(record).__name__)
def test_a_record_round_trips_through_its_item(record: Record) -> None:
    assert type(record).from_item(through_dynamodb(record.to_item())) == record


@pytest.mark.parametrize(("kind", "item"), ITEMS, ids=lambda value: getattr(value, "__name__", ""))
def test_an_item_round_trips_through_its_record(kind: type[Record], item: dict[str, Any]) -> None:
    assert kind.from_item(through_dynamodb(item)).to_item() == item


def test_an_item_gets_the_defaults_of_what_it_lacks_and_numbers_as_ints() -> None:
    runner = Runner.from_item({"orgId": "org_a", "runnerId": "rnr_1", "currentJobs": 2, "labels": ["b", "a"]})
    assert (runner.configured_concurrency, runner.current_jobs, runner.jobs_completed) == (1, 2, 0)
    assert runner.labels == ("b", "a")
    assert runner.held_jobs == frozenset()
    assert runner.token_version == 0  # no stored version: no token is the runner's


def test_a_new_item_has_the_attributes_it_always_had() -> None:
    """None values and empty sets are left out (DynamoDB stores no empty set); an empty list is kept."""
    item = Runner(org_id="org_a", runner_id="rnr_1", name="r", token_id="hgr_x", token_version=1).to_item()
    assert item == {
        "orgId": "org_a",
        "runnerId": "rnr_1",
        "name": "r",
        "labels": [],
        "status": "offline",
        "configuredConcurrency": 1,
        "currentJobs": 0,
        "jobsCompleted": 0,
        "tokenId": "hgr_x",
        "tokenVersion": 1,
    }


def test_attributes_a_record_does_not_name_are_not_read() -> None:
    runner = Runner.from_item({"orgId": "org_a", "runnerId": "rnr_1", "somethingElse": 1})
    assert "somethingElse" not in runner.to_item()


def test_a_job_reads_the_counters_it_lacks_as_their_defaults_and_writes_none_of_them() -> None:
    """The log and artifact counters are absent until a chunk or an artifact writes them: conditions test
    `attribute_not_exists(#logTruncated)`, so a new job item must not carry them."""
    job = Job.from_item(QUEUED_JOB_ITEM)
    assert (job.attempts, job.log_bytes, job.log_next_seq, job.artifact_count) == (0, 0, 0, 0)
    assert (job.log_truncated, job.cancel_requested) == (False, False)
    lacking = {key: value for key, value in QUEUED_JOB_ITEM.items() if key not in ("attempts", "maxAttempts")}
    assert (Job.from_item(lacking).attempts, Job.from_item(lacking).max_attempts) == (0, 1)
    item = job.to_item()
    for unwritten in ("logBytes", "logNextSeq", "logTruncated", "artifactCount", "cancelRequested"):
        assert unwritten not in item
    assert item["attempts"] == 0


def test_an_org_reads_its_license_with_the_overrides_applied() -> None:
    org = Org.from_item({**LICENSED_ORG_ITEM, "overrides": {"runnerLimit": 3}})
    assert (org.license().plan, org.license().runnerLimit) == ("team", 3)
    assert Org(org_id="org_a").license().plan == "free"  # no plan stored: the free plan's limits


def test_a_new_delivery_has_no_attempt_history_until_an_attempt_appends_one() -> None:
    """Each attempt appends with list_append(if_not_exists(#attemptHistory, :empty), ...)."""
    delivery = Delivery.from_item(NEW_DELIVERY_ITEM)
    assert delivery.attempt_history == ()
    assert "attemptHistory" not in delivery.to_item()
