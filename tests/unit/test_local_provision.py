"""`local.provision.ensure_tables`: the template's tables with TTL on, in as few calls as DynamoDB allows;
a second run against the same tables keeps them and their data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support import template

from local.provision import ensure_tables
from local.template.tables import table_definitions


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        calls: list[str] = []
        client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
        client.calls = calls
        yield client


def test_new_tables_are_created_with_ttl_and_nothing_else_asked(dynamodb: Any) -> None:
    definitions = table_definitions(template()).values()
    names = ensure_tables(dynamodb, template())
    with_ttl = [arguments["TableName"] for arguments in definitions if "TimeToLiveAttribute" in arguments]
    assert with_ttl
    # moto, like DynamoDB Local, answers CreateTable ACTIVE: no waiting, and a new table's TTL is known to be off.
    assert dynamodb.calls == ["ListTables"] + [
        call
        for name in names
        for call in (["CreateTable", "UpdateTimeToLive"] if name in with_ttl else ["CreateTable"])
    ]
    for name in with_ttl:
        assert dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_a_second_run_keeps_the_tables_and_their_data(dynamodb: Any) -> None:
    names = ensure_tables(dynamodb, template())
    first = next(iter(table_definitions(template()).values()))
    key = {part["AttributeName"]: {"S": "kept"} for part in first["KeySchema"]}
    dynamodb.put_item(TableName=first["TableName"], Item=key)
    dynamodb.calls.clear()
    assert ensure_tables(dynamodb, template()) == names
    assert set(dynamodb.calls) == {"ListTables", "DescribeTimeToLive"}
    assert dynamodb.get_item(TableName=first["TableName"], Key=key)["Item"] == key
