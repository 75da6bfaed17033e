"""The embedded backend remembers committed transactions' ClientRequestTokens as DynamoDB does: a
transaction whose response was lost and is sent again succeeds instead of meeting its own write."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.backend import SerialMotoServer
from local.transaction_tokens import TOKEN_WINDOW_SECONDS, Replay, TransactionTokens


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    server = SerialMotoServer()
    server.start()
    client = boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_table(
        TableName="Items",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client
    server.stop()


def _put_new(item_id: str, value: str) -> list[dict[str, Any]]:
    return [
        {
            "Put": {
                "TableName": "Items",
                "Item": {"id": {"S": item_id}, "value": {"S": value}},
                "ConditionExpression": "attribute_not_exists(id)",
            }
        }
    ]


def test_a_committed_transaction_sent_again_with_its_token_succeeds_without_writing(dynamodb: Any) -> None:
    item_id, token = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_put_new(item_id, "first"), ClientRequestToken=token)
    dynamodb.transact_write_items(TransactItems=_put_new(item_id, "first"), ClientRequestToken=token)
    stored = dynamodb.get_item(TableName="Items", Key={"id": {"S": item_id}})["Item"]
    assert stored["value"] == {"S": "first"}


def test_retries_queued_behind_their_first_attempt_all_succeed(dynamodb: Any) -> None:
    """A read timeout under load: the retry arrives while its first attempt still waits for moto. The
    token is looked up in the same critical section that runs the transaction, so every copy succeeds."""
    item_id, token = uuid.uuid4().hex, uuid.uuid4().hex
    send = functools.partial(dynamodb.transact_write_items, TransactItems=_put_new(item_id, "first"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: send(ClientRequestToken=token), range(8)))
    assert len(answers) == 8


def test_the_same_write_with_a_new_token_meets_its_condition(dynamodb: Any) -> None:
    item_id = uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_put_new(item_id, "first"), ClientRequestToken=uuid.uuid4().hex)
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=_put_new(item_id, "first"), ClientRequestToken=uuid.uuid4().hex)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_token_used_for_another_request_is_refused(dynamodb: Any) -> None:
    token = uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_put_new(uuid.uuid4().hex, "first"), ClientRequestToken=token)
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=_put_new(uuid.uuid4().hex, "other"), ClientRequestToken=token)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"


def test_a_cancelled_transaction_is_not_remembered(dynamodb: Any) -> None:
    item_id, token = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_put_new(item_id, "first"), ClientRequestToken=uuid.uuid4().hex)
    for _ in range(2):  # each replay of a cancelled transaction runs anew, and is cancelled again
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=_put_new(item_id, "second"), ClientRequestToken=token)
        assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_token_is_new_again_after_ten_minutes() -> None:
    now = [1000.0]
    tokens = TransactionTokens(now=lambda: now[0])
    body = {"ClientRequestToken": "t", "TransactItems": []}
    tokens.committed(body)
    assert tokens.replay(body) is Replay.SUCCEEDED
    now[0] += TOKEN_WINDOW_SECONDS + 1
    assert tokens.replay(body) is Replay.NEW
