"""Input a client can send that once gave 500s (issue 10, items 4 and 5): cursors we did not issue, and
JSON strings that are valid JSON text but not Unicode. Each is a 400 naming the field, on every route."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from support import AwsStack, invoke, runner_event, unique_org, user_event

# Every list, with the key its cursor holds (the table's key, plus the index's for an index).
LISTS = {
    "ListRunners": {"orgId", "runnerId"},
    "ListRunnersWithReadiness": {"orgId", "runnerId"},
    "ListJobs": {"orgId", "jobId"},
    "ListTargets": {"orgId", "sk"},
    "ListApiKeys": {"tokenId", "apiKeyOrg", "createdAt"},
}


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def forged_cursors(org: str, key: set[str]) -> dict[str, str]:
    """Cursors a client can make up, each of them once a 500 or a silent wrong page."""
    valid = {name: (org if name in ("orgId", "apiKeyOrg") else "TARGET#x" if name == "sk" else "x") for name in key}
    subset = dict(list(valid.items())[:-1])
    return {
        "subset of the key": cursor_of(subset),
        "partition key only": cursor_of({name: value for name, value in valid.items() if value == org}),
        "number for a string": cursor_of({**valid, **{name: 7 for name in valid if valid[name] != org}}),
        "extra attribute": cursor_of({**valid, "status": "queued"}),
        "empty string": cursor_of({**valid, **{name: "" for name in valid if valid[name] != org}}),
        "nested value": cursor_of({**valid, **{name: {"S": "x"} for name in valid if valid[name] != org}}),
        "lone surrogate": base64.urlsafe_b64encode(
            json.dumps({**valid, **{name: "\ud800" for name in valid if valid[name] != org}}).encode()
        ).decode(),
        "value past the key size": cursor_of({**valid, **{name: "x" * 1100 for name in valid if valid[name] != org}}),
        "not an object": cursor_of([org]),
        "null": cursor_of(None),
    }


CASES = [(logical_id, case) for logical_id, key in LISTS.items() for case in forged_cursors("org", key)]


@pytest.mark.parametrize(("logical_id", "case"), CASES, ids=[f"{lid}-{case}" for lid, case in CASES])
def test_a_cursor_we_did_not_issue_is_400_naming_cursor(aws: AwsStack, logical_id: str, case: str) -> None:
    org = unique_org()
    cursor = forged_cursors(org, LISTS[logical_id])[case]
    status, body, _ = invoke(logical_id, user_event(logical_id, org, query={"cursor": cursor}))
    assert status == 400, body
    error = body["error"]
    assert error["field"] == "cursor" and error["code"] == "invalid_request", body


@pytest.mark.parametrize("logical_id", list(LISTS))
def test_a_cursor_we_issued_still_pages(aws: AwsStack, logical_id: str) -> None:
    """The stricter check still takes every cursor a list hands out (two items, one per page)."""
    org = unique_org()
    create = {
        "ListRunners": ("CreateRunner", {"name": "r"}),
        "ListRunnersWithReadiness": ("CreateRunner", {"name": "r"}),
        "ListJobs": ("CreateJob", {"type": "scan", "repositoryConfig": "c", "repositoryName": "o/r", "branch": "m"}),
        "ListTargets": ("CreateTarget", {"name": "t", "url": "https://example.com", "visibility": "public"}),
        "ListApiKeys": ("CreateApiKey", {"name": "k", "scopes": ["runners:read"]}),
    }[logical_id]
    invoke("PutOrgLicense", user_event("PutOrgLicense", "ops", body={"plan": "team"}, path_params={"orgId": org}))
    for _ in range(2):
        status, body, _ = invoke(create[0], user_event(create[0], org, body=create[1]))
        assert status == 201, body
    status, first, _ = invoke(logical_id, user_event(logical_id, org, query={"limit": "1"}))
    assert status == 200, first
    assert first["nextCursor"]
    query = {"limit": "1", "cursor": first["nextCursor"]}
    status, second, _ = invoke(logical_id, user_event(logical_id, org, query=query))
    assert status == 200, second


# -- lone surrogates -----------------------------------------------------------------------------------

LONE_SURROGATE = '"\\ud800"'  # valid JSON text: a string holding U+D800 alone, which is no Unicode


def job_body(**fields: str) -> str:
    base = '{"type": "scan", "repositoryConfig": "c", "repositoryName": "o/r", "branch": "main"'
    return base + "".join(f', "{name}": {value}' for name, value in fields.items()) + "}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job_body(payload='{"path": ' + LONE_SURROGATE + "}"), "payload"),
        (job_body(payload="{" + LONE_SURROGATE + ": 1}"), "payload"),
        (job_body(repositoryName=LONE_SURROGATE), "repositoryName"),
    ],
)
def test_a_lone_surrogate_in_a_job_is_400(aws: AwsStack, body: str, field: str) -> None:
    status, response, _ = invoke("CreateJob", user_event("CreateJob", unique_org(), body=body))
    assert status == 400, response
    assert response["error"]["field"].split(".")[0] == field, response


def test_a_lone_surrogate_in_a_result_is_400_and_the_job_is_unchanged(aws: AwsStack) -> None:
    org = unique_org()
    status, created, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r"}))
    runner = created["data"]["_id"]
    heartbeat = runner_event("Heartbeat", org, runner, body={"status": "online"})
    assert invoke("Heartbeat", heartbeat)[0] == 200
    status, job, _ = invoke("CreateJob", user_event("CreateJob", org, body=job_body()))
    assert status == 201, job
    status, polled, _ = invoke("PollJob", runner_event("PollJob", org, runner, body="{}"))
    assert polled["data"]["job"]["_id"] == job["id"]
    body = '{"jobId": "' + job["id"] + '", "status": "completed", "result": {"out": ' + LONE_SURROGATE + "}}"
    status, response, _ = invoke("UpdateJobStatus", runner_event("UpdateJobStatus", org, runner, body=body))
    assert status == 400 and response["error"]["field"].split(".")[0] == "result", response
    status, stored, _ = invoke("GetJob", user_event("GetJob", org, path_params={"jobId": job["id"]}))
    assert stored["status"] == "assigned"


@pytest.mark.parametrize("logical_id", ["CreateRunner", "CreateTarget", "CreateApiKey"])
def test_a_lone_surrogate_anywhere_in_a_body_is_400(aws: AwsStack, logical_id: str) -> None:
    body = '{"name": ' + LONE_SURROGATE + "}"
    status, response, _ = invoke(logical_id, user_event(logical_id, unique_org(), body=body))
    assert status == 400, response
    assert response["error"]["field"] == "name", response
