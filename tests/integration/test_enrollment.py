"""Enrollment tokens and registration (seed 003) in-process against moto tables built from template.yaml."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from faults import Conflict, DynamoFaults
from hangar.core import clock
from hangar.identity import tokens
from hangar.identity.tokens import TokenType
from hangar.store import dynamo
from hangar.store.transactions import CONFLICT_ATTEMPTS
from support import AwsStack, invoke, load_event, unique_org, user_event

TOKENS_TABLE = "TokensTable"


class DynamoCalls:
    """Counts DynamoDB API calls made through hangar's client (a botocore event hook)."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


@pytest.fixture
def dynamo_calls(aws: AwsStack) -> Iterator[DynamoCalls]:
    calls = DynamoCalls()
    events = dynamo.client().meta.events
    events.register("before-call.dynamodb.*", calls)
    yield calls
    events.unregister("before-call.dynamodb.*", calls)


def enroll(org: str, body: Any = ..., scopes: str | None = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"body": body}
    if scopes is not None:
        kwargs["scopes"] = scopes
    status, response, _ = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", org, **kwargs))
    return status, response


def enrollment_token(org: str, **body: Any) -> str:
    status, response = enroll(org, body)
    assert status == 201, response
    token: str = response["token"]
    return token


def register(body: Any) -> tuple[int, Any]:
    event = copy.deepcopy(load_event("RegisterRunner"))
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    status, response, _ = invoke("RegisterRunner", event)
    return status, response


def set_org(aws: AwsStack, org: str, **fields: Any) -> None:
    """Changes the org item directly (plan limits, license state) — the license route is not under test."""
    names = {f"#{name}": name for name in fields}
    aws.dynamodb.update_item(
        TableName="OrgsTable",
        Key={"orgId": {"S": org}, "sk": {"S": "ORG"}},
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{name}": dynamo.serialize(value) for name, value in fields.items()},
    )


def get_item(aws: AwsStack, table: str, key: dict[str, str]) -> dict[str, Any] | None:
    raw = aws.dynamodb.get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()}).get("Item")
    return dynamo.from_item(raw)


def error_code(response: Any) -> str:
    code: str = response["error"]["code"]
    return code


def test_enrollment_token_is_created_and_exchanged_once(aws: AwsStack) -> None:
    org = unique_org()
    before = clock.now()
    status, created = enroll(org, {"name": "prod-runner-1"})
    assert status == 201, created
    assert set(created) == {"token", "tokenPrefix", "expiresAt"}
    parsed = tokens.parse(created["token"], TokenType.ENROLLMENT)
    assert parsed is not None and parsed.token_id == created["tokenPrefix"]
    stored = get_item(aws, "TokensTable", {"tokenId": created["tokenPrefix"]})
    assert stored is not None
    assert stored["kind"] == "enrollment" and stored["orgId"] == org and stored["name"] == "prod-runner-1"
    assert stored["createdBy"] == "dev-user"
    assert before + 1800 - 2 <= stored["expiresAtEpoch"] <= clock.now() + 1800
    assert stored["expiresAt"] == created["expiresAt"] == clock.iso(stored["expiresAtEpoch"])
    assert created["token"] not in str(aws.scan_all())  # only its HMAC is stored

    status, registered = register(
        {
            "token": created["token"],
            "labels": ["linux", "x64", "linux"],
            "version": "0.1.0",
            "containerEngine": "docker",
            "configuredConcurrency": 2,
            "capabilities": {"localProviderSecrets": True},
            "providerState": {"modelProvider": "openai-codex", "embeddingProvider": "local"},
        }
    )
    assert status == 201, registered
    assert set(registered) == {"runner", "token", "heartbeatIntervalSeconds", "pollIntervalSeconds"}
    assert registered["heartbeatIntervalSeconds"] == 30 and registered["pollIntervalSeconds"] == 10
    runner = registered["runner"]
    assert runner["name"] == "prod-runner-1"  # the enrollment token's suggested name
    assert runner["status"] == "offline" and runner["labels"] == ["linux", "x64"]
    assert runner["version"] == "0.1.0" and runner["containerEngine"] == "docker"
    assert runner["configuredConcurrency"] == 2 and runner["currentJobs"] == 0
    assert runner["capabilities"] == {"localProviderSecrets": True}
    assert runner["providerState"]["modelProvider"] == "openai-codex"
    runner_token = tokens.parse(registered["token"], TokenType.RUNNER)
    assert runner_token is not None and runner["tokenPrefix"] == runner_token.token_id
    assert registered["token"] not in str(aws.scan_all())

    # The runner token works (the runner authorizer's check) and the runner is the tenant's.
    from hangar.identity.credentials import authenticate_runner

    principal, _ = authenticate_runner(registered["token"])
    assert (principal.org_id, principal.runner_id, principal.token_version) == (org, runner["id"], 1)
    assert principal.labels == ("linux", "x64")
    status, body, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": runner["id"]}))
    assert status == 200 and body["data"]["name"] == "prod-runner-1"
    status, _, _ = invoke("GetRunner", user_event("GetRunner", unique_org(), path_params={"runnerId": runner["id"]}))
    assert status == 404

    used = get_item(aws, "TokensTable", {"tokenId": created["tokenPrefix"]})
    assert used is not None and used["usedAt"] and used["runnerId"] == runner["id"]
    org_item = get_item(aws, "OrgsTable", {"orgId": org, "sk": "ORG"})
    assert org_item is not None and org_item["runnerCount"] == 1

    status, again = register({"token": created["token"]})
    assert status == 401 and error_code(again) == "token_used", again
    assert set(again) == {"error"}  # the /v1 dialect


def test_enrollment_body_is_optional_and_ttl_is_bounded(aws: AwsStack) -> None:
    org = unique_org()
    for body in (..., None, {}):
        status, created = enroll(org, body)
        assert status == 201, (body, created)
    status, created = enroll(org, {"ttlSeconds": 60})
    assert status == 201
    stored = get_item(aws, "TokensTable", {"tokenId": created["tokenPrefix"]})
    assert stored is not None and stored["expiresAtEpoch"] - clock.now() <= 60
    status, created = enroll(org, {"ttlSeconds": 86400})
    assert status == 201


def test_names_default_to_the_suggestion_then_a_generated_one(aws: AwsStack) -> None:
    org = unique_org()
    set_org(aws, enroll_and_org(org), runnerLimit=10)
    status, registered = register(
        {
            "token": enrollment_token(org, name="suggested"),
            "name": "chosen",
            # Four levels of objects are fine.
            "providerState": {"a": {"b": {"c": {"d": 1.5}}}},
        }
    )
    assert status == 201 and registered["runner"]["name"] == "chosen"
    status, registered = register({"token": enrollment_token(org)})
    assert status == 201
    runner = registered["runner"]
    assert runner["name"] == "runner-" + runner["id"].removeprefix("rnr_")[:8]


def enroll_and_org(org: str) -> str:
    """Makes sure the org item exists (it is created on first authenticated use)."""
    enrollment_token(org)
    return org


def test_expired_token_still_in_the_table_is_refused(aws: AwsStack) -> None:
    org = unique_org()
    token = enrollment_token(org, ttlSeconds=60)
    clock.advance(59)
    # Still valid a second before it expires...
    token_ok = enrollment_token(org, ttlSeconds=60)
    clock.advance(2)
    status, response = register({"token": token})
    assert status == 401 and error_code(response) == "token_expired", response
    parsed = tokens.parse(token)
    assert parsed is not None and get_item(aws, "TokensTable", {"tokenId": parsed.token_id}) is not None
    status, response = register({"token": token_ok})
    assert status == 201, response


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "not-a-token",
        "hge_",
        "hge_0123456789ab_REPLACEWITHAREALENROLLMENTTOKEN000000",
        "x" * 10_000,
    ],
)
def test_junk_token_is_refused_before_any_database_read(aws: AwsStack, dynamo_calls: DynamoCalls, junk: str) -> None:
    status, response = register({"token": junk})
    assert status == 401 and error_code(response) == "token_invalid", response
    assert dynamo_calls.operations == []


def test_altered_or_mistyped_token_is_refused_before_any_database_read(
    aws: AwsStack, dynamo_calls: DynamoCalls
) -> None:
    org = unique_org()
    token = enrollment_token(org)
    runner_shaped = tokens.mint(TokenType.RUNNER).raw
    altered = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # checksum
        token[:20] + ("x" if token[20] != "x" else "y") + token[21:],  # secret
        "hgr" + token[3:],  # type
        runner_shaped,  # a valid runner token is no enrollment token
        token + "A",
    ]
    dynamo_calls.operations.clear()
    for candidate in altered:
        status, response = register({"token": candidate})
        assert status == 401 and error_code(response) == "token_invalid", (candidate, response)
    assert dynamo_calls.operations == []


def test_well_formed_unknown_or_forged_token_is_invalid(aws: AwsStack, dynamo_calls: DynamoCalls) -> None:
    org = unique_org()
    real = tokens.parse(enrollment_token(org))
    assert real is not None
    # Same id, another secret, a correct checksum: the shape passes, the hash does not.
    body = f"hge_{real.token_id}_{'Z' * tokens.SECRET_LENGTH}"
    forged = body + tokens.checksum(body)
    unknown = tokens.mint(TokenType.ENROLLMENT).raw
    for candidate in (forged, unknown):
        dynamo_calls.operations.clear()
        status, response = register({"token": candidate})
        assert status == 401 and error_code(response) == "token_invalid", response
        assert dynamo_calls.operations == ["GetItem"]
    # The forged attempt did not use up the real token.
    status, response = register({"token": real.raw})
    assert status == 201, response


def test_registration_is_one_read_and_one_transaction(aws: AwsStack, dynamo_calls: DynamoCalls) -> None:
    token = enrollment_token(unique_org())
    dynamo_calls.operations.clear()
    status, response = register({"token": token})
    assert status == 201, response
    assert dynamo_calls.operations == ["GetItem", "TransactWriteItems"]


def test_runner_limit_on_enrollment_and_on_registration(aws: AwsStack) -> None:
    org = unique_org()
    token = enrollment_token(org)  # free plan: room for one runner
    status, created, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "first"}))
    assert status == 201
    status, response = enroll(org, {"name": "second"})
    assert status == 403 and error_code(response) == "runner_limit_reached", response
    status, response = register({"token": token})
    assert status == 403 and error_code(response) == "runner_limit_reached", response
    # Refused registrations change nothing: once a slot is free the same token still works.
    status, _, _ = invoke(
        "DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": created["data"]["_id"]})
    )
    assert status == 200
    status, response = register({"token": token})
    assert status == 201, response


def test_inactive_license_on_enrollment_and_on_registration(aws: AwsStack) -> None:
    org = unique_org()
    token = enrollment_token(org)
    set_org(aws, org, licenseState="suspended")
    status, response = enroll(org, {})
    assert status == 403 and error_code(response) == "license_inactive", response
    status, response = register({"token": token})
    assert status == 403 and error_code(response) == "license_inactive", response
    set_org(aws, org, licenseState="active")
    status, response = register({"token": token})
    assert status == 201, response


def test_enrollment_needs_runners_manage(aws: AwsStack) -> None:
    status, response = enroll(unique_org(), {"name": "x"}, scopes="runners:read jobs:manage")
    assert status == 403 and error_code(response) == "insufficient_scope", response


def test_bad_enrollment_input_names_the_field(aws: AwsStack) -> None:
    org = unique_org()
    cases = [
        ("{not json", "body"),
        ([1], "body"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"ttlSeconds": 59}, "ttlSeconds"),
        ({"ttlSeconds": 86401}, "ttlSeconds"),
        ({"ttlSeconds": "soon"}, "ttlSeconds"),
        ({"expires": 5}, "expires"),
    ]
    for body, field in cases:
        status, response = enroll(org, body)
        assert status == 400 and response["error"]["field"] == field, (body, response)


def test_bad_registration_input_names_the_field(aws: AwsStack, dynamo_calls: DynamoCalls) -> None:
    token = tokens.mint(TokenType.ENROLLMENT).raw
    cases = [
        ("{not json", "body"),
        (None, "body"),
        ({}, "token"),
        ({"token": 5}, "token"),
        ({"token": token, "name": ""}, "name"),
        ({"token": token, "labels": ["bad label"]}, "labels.0"),
        ({"token": token, "configuredConcurrency": 0}, "configuredConcurrency"),
        ({"token": token, "version": "x" * 65}, "version"),
        ({"token": token, "capabilities": {"blob": "x" * 5000}}, "capabilities"),
        ({"token": token, "providerState": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "providerState"),
        ({"token": token, "providerState": [1]}, "providerState"),
        ({"token": token, "providerState": {"a": {"b": {"c": {"d": {}}}}}}, "providerState"),
        (f'{{"token": "{token}", "capabilities": {{"x": [1, NaN]}}}}', "capabilities"),
        ({"token": token, "owner": "me"}, "owner"),
    ]
    for body, field in cases:
        status, response = register(body)
        assert status == 400 and response["error"]["field"] == field, (body, response)
    assert dynamo_calls.operations == []  # input is checked before anything is read


def test_token_used_by_a_concurrent_registration_is_token_used(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read says unused, the transaction finds it used (another registration won): token_used."""
    from hangar.fleet import enrollment
    from hangar.store import tokens as token_store

    org = unique_org()
    set_org(aws, enroll_and_org(org), runnerLimit=10)
    token = enrollment_token(org)
    parsed = tokens.parse(token)
    assert parsed is not None
    unused = token_store.get_token(parsed.token_id)
    status, _ = register({"token": token})
    assert status == 201
    monkeypatch.setattr(enrollment.token_store, "get_token", lambda token_id: dict(unused or {}))
    status, response = register({"token": token})
    assert status == 401 and error_code(response) == "token_used", response


def test_transaction_conflicts_are_retried_then_answered_without_5xx(aws: AwsStack) -> None:
    token = enrollment_token(unique_org())
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(TOKENS_TABLE), times=1)
        status, response = register({"token": token})
    assert status == 201, response
    assert faults.injected == [("TransactWriteItems", "Conflict")]

    # Conflicting forever (never seen in practice): the token is still unused, so a clean 409.
    token = enrollment_token(unique_org())
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(TOKENS_TABLE), times=None)
        status, response = register({"token": token})
    assert status == 409 and error_code(response) == "token_busy", response
    assert len(faults.injected) == CONFLICT_ATTEMPTS


def test_fixture_event_is_a_valid_request(aws: AwsStack) -> None:
    status, response = register(load_event("RegisterRunner")["body"])
    assert status == 401 and error_code(response) == "token_invalid"
    status, response, _ = invoke("CreateEnrollmentToken", load_event("CreateEnrollmentToken"))
    assert status == 201, response
