"""Events from the data, on moto's real DynamoDB Streams: the records the API's own writes produce are
mapped to events (status transitions only), and the template's stream filters let exactly the records
that can be an event reach the processor (a heartbeat that changes nothing does not)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from builders import create_runner, heartbeat, live_runner, new_job
from hangar.core import clock
from hangar.events.processor import events_of_record
from jobs_helpers import cancel, polled_job, report, sweep
from support import FakeLambdaContext, clear_client_caches, handler_module, invoke, template, unique_org, user_event

from local.backend import SerialMotoServer
from local.event_sources import passes
from local.template import create_tables, event_sources


@pytest.fixture(scope="module")
def streams_backend() -> Iterator[str]:
    """moto as a server in a thread: its in-process mock does not serve DynamoDB Streams' API (404 "Not
    yet implemented" in this version); the server does, as it does for local/."""
    server = SerialMotoServer()
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def aws(streams_backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", streams_backend)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clear_client_caches()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(dynamodb, template())
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("SETUP_TOKEN_KMS_KEY_ID", key)
    clear_client_caches()
    yield
    clear_client_caches()


class Stream:
    """Reads a table's stream from where it is now, the way the processor's event source would."""

    def __init__(self, table: str) -> None:
        self.client = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName=table)["Table"]
        self.arn = arn["LatestStreamArn"]
        shard = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard, ShardIteratorType="LATEST")[
            "ShardIterator"
        ]

    def records(self) -> list[dict[str, Any]]:
        page = self.client.get_records(ShardIterator=self.iterator)
        self.iterator = page["NextShardIterator"]
        return [{**record, "eventSourceARN": self.arn} for record in page["Records"]]


def filters(source: str) -> tuple[Any, ...]:
    (spec,) = [spec for spec in event_sources(template()) if spec.source == source]
    return spec.filters


def event_types(records: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for record in records for event in events_of_record(record)]


def test_runner_events_are_transitions_and_the_filter_drops_heartbeats(aws: None) -> None:
    org, stream, runner_filters = unique_org(), Stream("RunnersTable"), filters("RunnersTable")
    runner_id = create_runner(org)["_id"]
    heartbeat(org, runner_id)  # offline -> online
    created_and_online = stream.records()
    assert event_types(created_and_online) == ["runner.created", "runner.online"]
    assert all(passes(runner_filters, record) for record in created_and_online)

    heartbeat(org, runner_id)
    heartbeat(org, runner_id, status="busy")
    quiet = stream.records()
    assert len(quiet) == 2 and event_types(quiet) == []
    assert not any(passes(runner_filters, record) for record in quiet)  # they cost no invocation

    status, body, _ = invoke(
        "RegenerateRunnerToken", user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner_id})
    )
    assert status == 200, body
    regenerated = stream.records()
    assert event_types(regenerated) == ["runner.token_regenerated"]
    assert all(passes(runner_filters, record) for record in regenerated)

    status, body, _ = invoke(
        "MarkRunnerOffline", user_event("MarkRunnerOffline", org, path_params={"runnerId": runner_id})
    )
    assert status == 200, body
    offline = stream.records()
    assert event_types(offline) == ["runner.offline"] and all(passes(runner_filters, r) for r in offline)
    (event,) = events_of_record(offline[-1])
    assert event["data"]["id"] == runner_id and event["data"]["status"] == "offline" and event["orgId"] == org

    status, body, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner_id}))
    assert status == 200, body
    deleted = stream.records()
    assert "runner.deleted" in event_types(deleted)
    assert all(passes(runner_filters, r) for r in deleted if events_of_record(r))


def test_job_events_follow_its_life_and_the_filter_drops_claims(aws: None) -> None:
    org, stream, job_filters = unique_org(), Stream("JobsTable"), filters("JobsTable")
    runner_id = live_runner(org, ["linux"])
    job = new_job(org, labels=["linux"])
    assert polled_job(org, runner_id, ["linux"]) is not None  # queued -> assigned: no event
    assert report(org, runner_id, job["id"], "running")[0] == 200
    assert report(org, runner_id, job["id"], "running")[0] == 200  # a repeated report changes nothing
    assert report(org, runner_id, job["id"], "completed", result={"ok": True})[0] == 200
    records = stream.records()
    assert event_types(records) == ["job.queued", "job.started", "job.completed"]
    for record in records:
        assert passes(job_filters, record) == bool(events_of_record(record)), record["dynamodb"].get("NewImage")
    completed = events_of_record(records[-1])[0]
    assert completed["data"]["status"] == "completed" and completed["data"]["result"] == {"ok": True}

    queued = new_job(org, labels=["gpu"])
    assert cancel(org, queued["id"])[0] == 200
    assert event_types(stream.records()) == ["job.queued", "job.cancelled"]


def test_a_lost_runners_job_is_requeued_and_an_unclaimed_job_expires(aws: None) -> None:
    org, stream = unique_org(), Stream("JobsTable")
    runner_id = live_runner(org, ["linux"])
    job = new_job(org, labels=["linux"], maxAttempts=2)
    assert polled_job(org, runner_id, ["linux"]) is not None
    clock.advance(200)  # the runner is stale
    sweep()
    assert event_types(stream.records()) == ["job.queued", "job.requeued"]
    expiring = new_job(org, labels=["nobody"], queueTimeoutSeconds=60)
    clock.advance(120)
    sweep()
    types = event_types(stream.records())
    assert types.count("job.expired") == 1 and expiring["id"] and job["id"]


def test_event_ids_come_from_the_record_so_a_retried_batch_repeats_them(aws: None) -> None:
    org, stream = unique_org(), Stream("JobsTable")
    new_job(org, labels=["linux"])
    (record,) = stream.records()
    first, again = events_of_record(record), events_of_record(record)
    assert first[0]["id"] == again[0]["id"] and first[0]["id"].startswith("evt_")


def test_a_refused_request_or_transaction_changes_nothing_and_emits_nothing(aws: None) -> None:
    org, jobs_stream, runners_stream = unique_org(), Stream("JobsTable"), Stream("RunnersTable")
    status, body, _ = invoke("CreateJob", user_event("CreateJob", org, body={"type": 5}))
    assert status == 400, body
    assert jobs_stream.records() == []
    create_runner(org)  # the free plan's one runner
    assert event_types(runners_stream.records()) == ["runner.created"]
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "second", "labels": []}))
    assert status == 403 and body["error"]["code"] == "runner_limit_reached", body  # the transaction said no
    assert runners_stream.records() == []


@pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
def test_the_processor_handles_a_record_it_has_no_event_for(aws: None, event_name: str) -> None:
    record = {"eventID": "1", "eventName": event_name, "dynamodb": {"Keys": {"id": {"S": "idempotency"}}}}
    response = handler_module("EventProcessor").handler({"Records": [record]}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
