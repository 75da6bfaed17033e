"""`local.moto_speedups.speed_up_moto`: moto's DynamoDB answers the same, at the cost of what a request
touches rather than of what the tables hold (a transaction's rollback copy, the response serializer)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer

from local.moto_speedups import speed_up_moto

ITEMS = [
    {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "12.5"}, "flag": {"BOOL": False}, "nothing": {"NULL": True}},
    {
        "pk": {"S": "a"},
        "sk": {"S": "2"},
        "nested": {"M": {"xs": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": True}}}]}, "e": {"S": ""}}},
        "tags": {"SS": ["one", "two"]},
        "counts": {"NS": ["1", "2"]},
    },
    {"pk": {"S": "b"}, "sk": {"S": "1"}, "blob": {"B": b"\x00\x01binary"}, "blobs": {"BS": [b"x", b"y"]}},
    {"pk": {"S": "b"}, "sk": {"S": "2"}, "empty": {"L": []}, "emptymap": {"M": {}}, "s": {"S": "ünï"}},
]


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        speed_up_moto()
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Things",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        for item in ITEMS:
            client.put_item(TableName="Things", Item=item)
        yield client


def _reads(client: Any) -> list[Any]:
    """Every read's items, after an update that writes the same each time (its new image included)."""
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in ITEMS]
    updated = client.update_item(
        TableName="Things",
        Key=keys[1],
        UpdateExpression="SET touched = :t",
        ExpressionAttributeValues={":t": {"M": {"at": {"N": "1"}}}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    return [
        updated,
        client.scan(TableName="Things")["Items"],
        client.query(
            TableName="Things", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
        )["Items"],
        [client.get_item(TableName="Things", Key=key)["Item"] for key in keys],
        client.batch_get_item(RequestItems={"Things": {"Keys": keys}})["Responses"]["Things"],
    ]


def _by_key(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def test_the_direct_serializer_writes_what_moto_s_own_writes(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    direct = _reads(dynamodb)
    stored = {(item["pk"]["S"], item["sk"]["S"]): item for item in direct[1]}
    assert {key: {k: v for k, v in item.items() if k != "touched"} for key, item in stored.items()} == {
        (item["pk"]["S"], item["sk"]["S"]): item for item in ITEMS
    }  # every type, as written
    patched = BaseJSONSerializer._serialize_type_structure
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", patched.__wrapped__)  # type: ignore[attr-defined]
    assert _reads(dynamodb) == direct


def _table(name: str = "Things") -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].tables[name]


def _stream_records(client: Any) -> list[Any]:
    return list(_table().stream_shard.items)


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(dynamodb: Any) -> None:
    before, records = _by_key(dynamodb.scan(TableName="Things")["Items"]), len(_stream_records(dynamodb))
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "Things",
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "2"}},
                        "UpdateExpression": "SET nested.xs[0] = :v, tags = :t",
                        "ExpressionAttributeValues": {":v": {"S": "changed"}, ":t": {"SS": ["three"]}},
                    }
                },
                {"Put": {"TableName": "Things", "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                {"Delete": {"TableName": "Things", "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "Things",
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "2"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert _by_key(dynamodb.scan(TableName="Things")["Items"]) == before
    assert len(_stream_records(dynamodb)) == records
    # The table still takes writes, and they reach the stream.
    marker = uuid.uuid4().hex
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "Things",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                    "UpdateExpression": "SET marker = :m",
                    "ExpressionAttributeValues": {":m": {"S": marker}},
                }
            },
            {"Put": {"TableName": "Things", "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
        ]
    )
    after = {(i["pk"]["S"], i["sk"]["S"]): i for i in dynamodb.scan(TableName="Things")["Items"]}
    assert after[("a", "1")]["marker"] == {"S": marker} and ("c", "1") in after and len(after) == len(before) + 1
    assert len(_stream_records(dynamodb)) == records + 2


def test_any_other_copy_of_a_table_is_a_whole_one(dynamodb: Any) -> None:
    table = _table()
    copied = copy.deepcopy(table)
    assert copied is not table and copied.items is not table.items
    for hash_value, items in table.items.items():
        for range_value, item in items.items():
            assert copied.items[hash_value][range_value] is not item
            assert copied.items[hash_value][range_value].to_json() == item.to_json()


def test_a_message_past_the_queue_s_retention_period_is_not_received(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time

    with mock_aws():
        speed_up_moto()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="kept-a-minute", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="kept")
        sqs.send_message(QueueUrl=url, MessageBody="also kept")
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) == 2
        monkeypatch.setattr(sqs_models, "unix_time", lambda *args: unix_time(*args) + 61)
        assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_a_query_on_the_table_s_key_reads_what_moto_s_own_reads(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    for partition in ("p1", "p2", "p3"):
        for index in range(7):
            dynamodb.put_item(
                TableName="Things",
                Item={"pk": {"S": partition}, "sk": {"S": f"{index:02d}"}, "n": {"N": str(index)}},
            )

    def pages(**query: Any) -> list[list[dict[str, Any]]]:
        found, start = [], None
        while True:
            page = dynamodb.query(
                TableName="Things", Limit=3, **query, **({"ExclusiveStartKey": start} if start else {})
            )
            found.append(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    queries = [
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p2"}}},
        {
            "KeyConditionExpression": "pk = :p AND sk > :s",
            "ExpressionAttributeValues": {":p": {"S": "p1"}, ":s": {"S": "02"}, ":n": {"N": "4"}},
            "FilterExpression": "n < :n",
            "ScanIndexForward": False,
        },
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nowhere"}}},
    ]
    partitioned = [pages(**query) for query in queries]
    assert [sum(len(page) for page in found) for found in partitioned] == [7, 1, 0]
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)  # type: ignore[attr-defined]
    assert [pages(**query) for query in queries] == partitioned


def test_a_symmetric_key_encrypts_without_an_rsa_key_being_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    made: list[int] = []
    generate = rsa.generate_private_key
    monkeypatch.setattr(rsa, "generate_private_key", lambda *a, **k: made.append(1) or generate(*a, **k))
    with mock_aws():
        speed_up_moto()
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        sealed = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"secret"
    assert made == []


def test_a_signing_key_signs_verifies_and_shows_its_public_key() -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    with mock_aws():
        speed_up_moto()
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signing = {"KeyId": key_id, "Message": b"payload", "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}
        signature = kms.sign(**signing)["Signature"]
        assert kms.verify(**signing, Signature=signature)["SignatureValid"] is True
        public_key: Any = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
        public_key.verify(signature, b"payload", padding.PKCS1v15(), hashes.SHA256())  # raises if not its key
        other = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        assert kms.get_public_key(KeyId=other)["PublicKey"] != kms.get_public_key(KeyId=key_id)["PublicKey"]
