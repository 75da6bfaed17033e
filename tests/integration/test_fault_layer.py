"""The fault layer (tests/faults.py) answers as DynamoDB documents it — moto ignores ClientRequestToken,
so these pin down the emulation every fault test relies on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from faults import ConditionFailed, Conflict, DynamoFaults, LostResponse, Throttled
from hangar.core import clock
from hangar.store import dynamo
from support import AwsStack

from local.transaction_tokens import TOKEN_WINDOW_SECONDS

TABLE = "OrgsTable"


def key(name: str) -> dict[str, Any]:
    return {"orgId": {"S": name}, "sk": {"S": "COUNTER"}}


def add_one(name: str, condition: str | None = None) -> list[dict[str, Any]]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(name),
        "UpdateExpression": "ADD hits :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return [{"Update": update}]


def hits(name: str) -> int:
    item = dynamo.client().get_item(TableName=TABLE, Key=key(name), ConsistentRead=True).get("Item")
    return int(item["hits"]["N"]) if item else 0


@pytest.fixture
def name(aws: AwsStack) -> str:
    return f"counter-{uuid.uuid4().hex[:8]}"


def test_a_committed_token_replayed_with_the_same_request_succeeds_and_writes_nothing(name: str) -> None:
    token = str(uuid.uuid4())
    with DynamoFaults.installed() as faults:
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=token)
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=token)
    assert hits(name) == 1 and faults.replayed == 1


def test_a_committed_token_with_another_request_is_a_mismatch(name: str) -> None:
    token = str(uuid.uuid4())
    with DynamoFaults.installed():
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=token)
        with pytest.raises(ClientError) as refused:
            dynamo.client().transact_write_items(TransactItems=add_one(name + "x"), ClientRequestToken=token)
    assert dynamo.error_code(refused.value) == "IdempotentParameterMismatchException"
    assert hits(name) == 1 and hits(name + "x") == 0


def test_a_cancelled_transaction_is_not_remembered(name: str) -> None:
    token = str(uuid.uuid4())
    with DynamoFaults.installed():
        with pytest.raises(ClientError):
            dynamo.client().transact_write_items(
                TransactItems=add_one(name, "attribute_exists(hits)"), ClientRequestToken=token
            )
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=str(uuid.uuid4()))
        # The same token and request again: its condition holds now, and it runs.
        dynamo.client().transact_write_items(
            TransactItems=add_one(name, "attribute_exists(hits)"), ClientRequestToken=token
        )
    assert hits(name) == 2


def test_a_token_is_new_again_after_ten_minutes(name: str) -> None:
    token = str(uuid.uuid4())
    with DynamoFaults.installed() as faults:
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=token)
        clock.advance(TOKEN_WINDOW_SECONDS + 1)
        dynamo.client().transact_write_items(TransactItems=add_one(name), ClientRequestToken=token)
    assert hits(name) == 2 and faults.replayed == 0


def test_botocore_fills_the_token_and_replays_it_after_a_lost_response(name: str) -> None:
    """botocore generates a ClientRequestToken (an idempotencyToken member) once per call and resends it
    with each of its retries, so a lost response is answered by the replay, not by a second write."""
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", LostResponse(), times=1)
        dynamo.client().transact_write_items(TransactItems=add_one(name))
    assert hits(name) == 1 and faults.replayed == 1


def test_a_lost_response_of_a_single_write_is_retried_as_a_new_write(name: str) -> None:
    """Single writes have no token: botocore's retry writes again (so hangar's are conditional)."""
    with DynamoFaults.installed() as faults:
        faults.inject("UpdateItem", LostResponse(), times=1)
        dynamo.client().update_item(**add_one(name)[0]["Update"])
    assert hits(name) == 2


def test_conflicts_and_throttling_write_nothing(name: str) -> None:
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(), times=1)
        with pytest.raises(ClientError) as refused:
            dynamo.client().transact_write_items(TransactItems=add_one(name))
        faults.inject("UpdateItem", Throttled(), times=None)
        with pytest.raises(ClientError) as throttled:
            dynamo.client().update_item(**add_one(name)[0]["Update"])
    assert refused.value.response["CancellationReasons"] == [{"Code": "TransactionConflict"}]
    assert dynamo.error_code(throttled.value) == "ProvisionedThroughputExceededException"
    assert hits(name) == 0


def test_every_lost_response_exhausts_botocore_then_surfaces(name: str) -> None:
    attempts = dynamo.client().meta.config.retries["total_max_attempts"]
    with DynamoFaults.installed() as faults:
        faults.inject("UpdateItem", LostResponse(), times=None)
        with pytest.raises(ReadTimeoutError):
            dynamo.client().update_item(**add_one(name)[0]["Update"])
    assert len(faults.injected) == attempts


@pytest.mark.parametrize("with_item", [True, False])
def test_a_fabricated_condition_failure_returns_the_item_as_stored_or_none(name: str, with_item: bool) -> None:
    dynamo.client().transact_write_items(TransactItems=add_one(name))
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", ConditionFailed(TABLE, with_item=with_item), times=1)
        with pytest.raises(ClientError) as refused:
            dynamo.client().transact_write_items(TransactItems=add_one(name))
    (reason,) = refused.value.response["CancellationReasons"]
    assert reason["Code"] == "ConditionalCheckFailed"
    assert (reason.get("Item") or {}).get("hits") == ({"N": "1"} if with_item else None)
    assert hits(name) == 1
