"""`HANGAR_DYNAMODB_ENDPOINT`: `make run` on an external DynamoDB (AWS's DynamoDB Local here) creates the
tables it lacks, keeps existing ones and their data, and a restart carries on where it stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from http_builders import dynamodb_client

from local.testing import start_dynamodb_local, start_local_api, unique_org


@pytest.fixture(scope="module")
def dynamodb_endpoint(dynamodb_local: str | None) -> Iterator[str]:
    """The session's DynamoDB Local (HANGAR_E2E_DYNAMODB=local), or one of this module's own."""
    if dynamodb_local:
        yield dynamodb_local
        return
    database = start_dynamodb_local()
    try:
        yield database.endpoint
    finally:
        database.stop()


def test_a_restart_against_existing_tables_keeps_the_data_and_the_tenants(dynamodb_endpoint: str) -> None:
    prefix = f"restart-{uuid.uuid4().hex[:8]}-"
    environment = {"HANGAR_DYNAMODB_ENDPOINT": dynamodb_endpoint, "HANGAR_TABLE_PREFIX": prefix}
    org = unique_org()
    with start_local_api(extra_env=environment) as first:
        jwt = first.jwt(org, "runners:read runners:manage")
        created = first.call("POST", "/api/runners", token=jwt, json={"name": "survivor"})
        assert created.status == 201, created.body
        runner_token = created.body["data"]["token"]
        assert (
            first.call("POST", "/api/runners/heartbeat", runner_token=runner_token, json={"status": "online"}).status
            == 200
        )
    dynamodb = dynamodb_client(dynamodb_endpoint)
    tokens = dynamodb.describe_time_to_live(TableName=f"{prefix}TokensTable")["TimeToLiveDescription"]
    assert tokens["TimeToLiveStatus"] == "ENABLED"  # the second start finds TTL on: it must not turn it on again
    with start_local_api(extra_env=environment) as second:
        assert f"DynamoDB endpoint: {dynamodb_endpoint}" in second.output()
        listed = second.call("GET", "/api/runners", token=jwt)
        assert listed.status == 200, listed.body
        assert [runner["name"] for runner in listed.body["data"]] == ["survivor"]
        # The runner's token still works: its tenant's usage key is back in the new embedded API Gateway.
        beat = second.call("POST", "/api/runners/heartbeat", runner_token=runner_token, json={"status": "online"})
        assert beat.status == 200, beat.body
