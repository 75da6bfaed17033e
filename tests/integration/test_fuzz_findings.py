"""What schemathesis found (tests/e2e/test_fuzz_schemathesis.py), pinned in-process: each was a 5xx, or a
2xx for input the documented schema refuses, before its fix in hangar.api.http or the models."""

from __future__ import annotations

from typing import Any

import pytest
from builders import create_runner
from support import READ_ONLY, AwsStack, invoke, runner_event, unique_org, user_event


def with_content_type(event: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    headers = {name: value for name, value in (event.get("headers") or {}).items() if name.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    return event


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/vnd.api+json", "Application/JSON"]
)
def test_a_body_that_is_not_json_is_415(aws: AwsStack, content_type: str) -> None:
    """Was 500 (Powertools' unsupported content type fell through), or for a form a misleading
    `name: field required`."""
    event = with_content_type(user_event("CreateRunner", unique_org(), body={"name": "r"}), content_type)
    status, body, _ = invoke("CreateRunner", event)
    assert status == 415, body
    assert body["error"]["code"] == "unsupported_media_type" and body["error"]["field"] == "body"


@pytest.mark.parametrize("content_type", [None, "application/json", "application/json; charset=utf-8"])
def test_json_or_no_content_type_is_read_as_json(aws: AwsStack, content_type: str | None) -> None:
    event = with_content_type(user_event("CreateRunner", unique_org(), body={"name": "r"}), content_type)
    assert invoke("CreateRunner", event)[0] == 201


def test_a_request_without_a_body_needs_no_content_type(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, "fuzzed")
    event = with_content_type(
        user_event("MarkRunnerOffline", org, body=None, path_params={"runnerId": runner["_id"]}), "text/plain"
    )
    assert invoke("MarkRunnerOffline", event)[0] == 200


@pytest.mark.parametrize("body", ['[{"name": "r"}]', "[null, null]", '"r"', "5", "null"])
def test_a_body_that_is_no_json_object_is_400(aws: AwsStack, body: str) -> None:
    """Powertools reads a one-element list as its element (a form-data rule it applies to JSON too):
    `[{"name": "r"}]` created a runner."""
    status, response, _ = invoke("CreateRunner", user_event("CreateRunner", unique_org(), body=body))
    assert status == 400, response
    assert response["error"]["field"] == "body"
    status, response, _ = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", unique_org(), body=body))
    assert status == 400, response


def test_an_optional_body_may_be_left_out(aws: AwsStack) -> None:
    status, body, _ = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", unique_org(), body=None))
    assert status == 201, body


@pytest.mark.parametrize("body", ['{"name": ' + "1" * 5000 + "}", "[" * 20000 + "]" * 20000])
def test_json_python_cannot_read_is_400_not_500(aws: AwsStack, body: str) -> None:
    """An integer past Python's 4300-digit limit, nesting past the parser's recursion limit."""
    status, response, _ = invoke("CreateRunner", user_event("CreateRunner", unique_org(), body=body))
    assert status == 400, response
    assert response["error"]["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "online", "systemInfo": {"cpu": False}}, "systemInfo.cpu"),
        ({"status": "online", "systemInfo": {"memory": "4"}}, "systemInfo.memory"),
        ({"status": "online", "configuredConcurrency": True}, "configuredConcurrency"),
        ({"status": "online", "configuredConcurrency": "2"}, "configuredConcurrency"),
        # DynamoDB cannot hold 1e-308 (it underflows): was a 500.
        ({"status": "online", "systemInfo": {"disk": 1.1125369292536007e-308}}, "systemInfo.disk"),
        ({"status": "online", "capabilities": {"tiny": 1e-300}}, "capabilities"),
    ],
)
def test_heartbeat_numbers_are_json_numbers_dynamodb_can_hold(aws: AwsStack, body: Any, field: str) -> None:
    org = unique_org()
    runner = create_runner(org, "fuzzed")
    status, response, _ = invoke("Heartbeat", runner_event("Heartbeat", org, runner["_id"], body=body))
    assert status == 400, response
    assert response["error"]["field"] == field


def test_small_and_zero_measures_are_stored(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, "fuzzed")
    body = {"status": "online", "systemInfo": {"cpu": 0.5, "memory": 0, "disk": 1e-30}, "capabilities": {"x": 0.0}}
    status, response, _ = invoke("Heartbeat", runner_event("Heartbeat", org, runner["_id"], body=body))
    assert status == 200, response


def test_enrollment_ttl_is_a_json_number(aws: AwsStack) -> None:
    status, body, _ = invoke(
        "CreateEnrollmentToken", user_event("CreateEnrollmentToken", unique_org(), body={"ttlSeconds": "600"})
    )
    assert status == 400 and body["error"]["field"] == "ttlSeconds", body


@pytest.mark.parametrize(
    ("logical_id", "body", "path_params"),
    [
        ("CreateRunner", {"name": ""}, None),
        ("CreateRunner", "{not json", None),
        ("UpdateRunner", {"configuredConcurrency": 0}, {"runnerId": "x" * 500}),
        ("CreateTarget", {"url": "nope"}, None),
        ("CreateApiKey", [1], None),
        ("PutOrgLicense", {}, {"orgId": "bad org!"}),
        ("CreateJob", {"type": ""}, None),
    ],
)
def test_a_caller_without_the_scope_is_refused_whatever_it_sends(
    aws: AwsStack, logical_id: str, body: Any, path_params: dict[str, str] | None
) -> None:
    """The route's scope is checked before its input: 403, never a 400 that reads the request for them."""
    event = user_event(logical_id, unique_org(), scopes=READ_ONLY, body=body, path_params=path_params)
    status, response, _ = invoke(logical_id, event)
    assert status == 403, response
    assert response["error"]["code"] == "insufficient_scope"


def test_missing_scope_comes_before_an_oversized_body(aws: AwsStack) -> None:
    event = user_event("CreateRunner", unique_org(), scopes=READ_ONLY, body={"name": "r", "pad": "x" * 70_000})
    assert invoke("CreateRunner", event)[0] == 403
    event = user_event("CreateRunner", unique_org(), body={"name": "r", "pad": "x" * 70_000})
    assert invoke("CreateRunner", event)[0] == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [({"plan": None}, "plan"), ({"licenseState": None}, "licenseState"), ({}, "body")],
)
def test_license_change_as_documented(aws: AwsStack, body: Any, field: str) -> None:
    """The documented schema says plan and licenseState are never null and the body names at least one field."""
    event = user_event("PutOrgLicense", "operators", body=body, path_params={"orgId": unique_org()})
    status, response, _ = invoke("PutOrgLicense", event)
    assert status == 400 and response["error"]["field"] == field, response
