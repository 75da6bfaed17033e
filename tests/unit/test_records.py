"""The store's typed records: built from an item once, and back to the same item shape for a write."""

from __future__ import annotations

from typing import Any

import pytest
from hangar.store import dynamo
from hangar.store.api_keys import ApiKey
from hangar.store.records import Record
from hangar.store.runners import Runner


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
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: type(record).__name__)
def test_a_record_round_trips_through_its_item(record: Record) -> None:
    assert type(record).from_item(through_dynamodb(record.to_item())) == record


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
