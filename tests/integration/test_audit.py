"""The audit log in-process against moto: every user change and registration writes exactly one event, in
the change's own transaction (none for a refused change), and GET /v1/audit-events lists the tenant's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from builders import live_runner, set_license
from faults import Conflict, Crash, DynamoFaults, FunctionCrashed, LostResponse
from hangar.core import clock
from hangar.store import audit as audit_store
from jobs_helpers import polled_job, report
from support import AwsStack, invoke, load_event, unique_org, user_event

SOURCE_IP = "203.0.113.10"  # the fixtures' requestContext.identity.sourceIp
SUBJECT = "dev-user"  # the fixtures' JWT subject


def stored_events(aws: AwsStack, org: str) -> list[dict[str, Any]]:
    """Every audit item of the tenant, straight from the table (newest first)."""
    from hangar.store.dynamo import from_item

    response = aws.dynamodb.query(
        TableName=audit_store.table(),
        KeyConditionExpression="orgId = :org",
        ExpressionAttributeValues={":org": {"S": org}},
        ScanIndexForward=False,
    )
    return [item for item in (from_item(raw) for raw in response["Items"]) if item is not None]


def call(
    logical_id: str,
    org: str,
    *,
    body: Any = ...,
    path: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    """The route as `org`'s JWT user `dev-user`, under a fresh request id."""
    event = user_event(logical_id, org, body=body, path_params=path)
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    request_id = str(uuid.uuid4())
    event["requestContext"]["requestId"] = request_id
    status, response, _ = invoke(logical_id, event)
    return status, response, request_id


def listed(org: str, scopes: str = "audit:read", **query: str) -> tuple[int, Any]:
    status, body, _ = invoke("ListAuditEvents", user_event("ListAuditEvents", org, scopes=scopes, query=query))
    return status, body


def create_runner(org: str, name: str = "r") -> tuple[str, str]:
    status, body, request_id = call("CreateRunner", org, body={"name": name})
    assert status == 201, body
    return body["data"]["_id"], request_id


def assert_one_event(
    aws: AwsStack,
    org: str,
    action: str,
    target: tuple[str, str],
    request_id: str,
    actor: tuple[str, str] = ("jwt", SUBJECT),
    before: int = 0,
) -> dict[str, Any]:
    """Exactly one event more than `before` for the tenant: `action` on `target` by `actor`, in that request."""
    events = stored_events(aws, org)
    assert len(events) == before + 1, events
    event = events[0]
    assert event["action"] == action
    assert event["target"] == {"type": target[0], "id": target[1]}
    assert event["actor"] == {"type": actor[0], "id": actor[1]}
    assert event["sourceIp"] == SOURCE_IP and event["requestId"] == request_id and event["orgId"] == org
    assert event["expiresAtEpoch"] - clock.now() == pytest.approx(365 * 86400, abs=5)
    return event


# --- one event per change, with the right actor and target ------------------------------------------


def test_runner_create_update_regenerate_mark_offline_delete(aws: AwsStack) -> None:
    org = unique_org()
    runner_id, request_id = create_runner(org)
    assert_one_event(aws, org, "runner.create", ("runner", runner_id), request_id)
    steps: list[tuple[str, str, Any]] = [
        ("UpdateRunner", "runner.update", {"name": "renamed", "labels": ["linux"]}),
        ("RegenerateRunnerToken", "runner.regenerate_token", ...),
        ("MarkRunnerOffline", "runner.mark_offline", ...),
        ("DeleteRunner", "runner.delete", ...),
    ]
    for count, (logical_id, action, body) in enumerate(steps, start=1):
        status, response, request_id = call(logical_id, org, body=body, path={"runnerId": runner_id})
        assert status == 200, (logical_id, response)
        assert_one_event(aws, org, action, ("runner", runner_id), request_id, before=count)


def test_update_moves_the_labels_to_the_token_with_its_event(aws: AwsStack) -> None:
    from hangar.store import tokens

    org = unique_org()
    runner_id, _ = create_runner(org)
    status, body, _ = call("UpdateRunner", org, body={"labels": ["gpu", "gpu"]}, path={"runnerId": runner_id})
    assert status == 200 and body["data"]["labels"] == ["gpu"], body
    token = tokens.get_token(body["data"]["tokenPrefix"])
    assert token is not None and token["labels"] == ["gpu"]


def test_enrollment_token_and_registration(aws: AwsStack) -> None:
    org = unique_org()
    status, body, request_id = call("CreateEnrollmentToken", org, body={"name": "ci"})
    assert status == 201, body
    assert_one_event(aws, org, "enrollment_token.create", ("enrollment_token", body["tokenPrefix"]), request_id)
    register = load_event("RegisterRunner")
    register["body"] = f'{{"token": "{body["token"]}", "name": "agent-1"}}'
    register["requestContext"]["requestId"] = "register-request"
    status, registered, _ = invoke("RegisterRunner", register)
    assert status == 201, registered
    runner_id = registered["runner"]["id"]
    # The runner is the actor of its own registration.
    assert_one_event(
        aws, org, "runner.register", ("runner", runner_id), "register-request", actor=("runner", runner_id), before=1
    )
    # Never a secret in an event: neither the enrollment token nor the runner token.
    raw = str(stored_events(aws, org))
    assert body["token"] not in raw and registered["token"] not in raw


def test_api_keys_targets_and_the_key_as_actor(aws: AwsStack) -> None:
    org = unique_org()
    status, key, request_id = call("CreateApiKey", org, body={"name": "ci", "scopes": ["targets:manage"]})
    assert status == 201, key
    assert_one_event(aws, org, "api_key.create", ("api_key", key["id"]), request_id)
    assert key["token"] not in str(stored_events(aws, org))
    # A change made with the API key names the key (its id, never its value) as the actor.
    as_key = {"principalType": "apikey", "subject": key["id"], "keyId": key["id"], "scopes": "targets:manage"}
    event = user_event("CreateTarget", org, body={"name": "site", "url": "https://example.com", "visibility": "public"})
    event["requestContext"]["authorizer"].update(as_key)
    event["requestContext"]["requestId"] = "with-key"
    status, target, _ = invoke("CreateTarget", event)
    assert status == 201, target
    assert_one_event(aws, org, "target.create", ("target", target["id"]), "with-key", ("api_key", key["id"]), 1)
    status, response, request_id = call("DeleteTarget", org, path={"targetId": target["id"]})
    assert status == 200, response
    assert_one_event(aws, org, "target.delete", ("target", target["id"]), request_id, before=2)
    status, response, request_id = call("DeleteApiKey", org, path={"keyId": key["id"]})
    assert status == 200, response
    assert_one_event(aws, org, "api_key.delete", ("api_key", key["id"]), request_id, before=3)


def test_webhooks_create_and_delete(aws: AwsStack) -> None:
    org = unique_org()
    body = {"url": "https://93.184.215.14/hooks", "events": ["*"]}  # a public address: no DNS needed
    status, webhook, request_id = call("CreateWebhook", org, body=body)
    assert status == 201, webhook
    event = assert_one_event(aws, org, "webhook.create", ("webhook", webhook["id"]), request_id)
    assert webhook["secret"] not in str(event)
    status, response, request_id = call("DeleteWebhook", org, path={"webhookId": webhook["id"]})
    assert status in (200, 204), response
    assert_one_event(aws, org, "webhook.delete", ("webhook", webhook["id"]), request_id, before=1)
    status, response, _ = call("DeleteWebhook", org, path={"webhookId": webhook["id"]})
    assert status == 404 and len(stored_events(aws, org)) == 2  # a refused delete records nothing


def test_license_change_is_in_the_tenants_log_by_the_operator(aws: AwsStack) -> None:
    org, operators = unique_org(), unique_org()
    status, body, request_id = call("PutOrgLicense", operators, body={"plan": "team"}, path={"orgId": org})
    assert status == 200 and body["plan"] == "team", body
    assert_one_event(aws, org, "license.update", ("org", org), request_id, actor=("operator", SUBJECT))
    assert stored_events(aws, operators) == []


def test_jobs_create_and_cancel_queued_and_running(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org)  # an operator's license.update: one event
    job_body = {"type": "scan", "repositoryConfig": "c", "labels": ["linux"]}
    job_ids = []
    for count in (1, 2):
        status, job, request_id = call("CreateJob", org, body=job_body)
        assert status == 201, job
        assert_one_event(aws, org, "job.create", ("job", job["id"]), request_id, before=count)
        job_ids.append(job["id"])
    status, cancelled, request_id = call("CancelJob", org, path={"jobId": job_ids[0]})
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    assert_one_event(aws, org, "job.cancel", ("job", job_ids[0]), request_id, before=3)
    runner_id = live_runner(org, labels=["linux"])  # runner.create: one event
    claimed = polled_job(org, runner_id, labels=["linux"])
    assert claimed is not None and claimed["_id"] == job_ids[1]
    report(org, runner_id, job_ids[1], "running")  # the runner's own reports are not audited
    status, cancelled, request_id = call("CancelJob", org, path={"jobId": job_ids[1]})
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    assert_one_event(aws, org, "job.cancel", ("job", job_ids[1]), request_id, before=5)
    # Cancelling a cancelled job changes nothing, and records nothing.
    status, _, _ = call("CancelJob", org, path={"jobId": job_ids[1]})
    assert status == 200 and len(stored_events(aws, org)) == 6


def test_idempotent_replay_of_a_job_create_records_nothing_more(aws: AwsStack) -> None:
    org = unique_org()
    body = {"type": "scan", "repositoryConfig": "c"}
    for _ in range(2):
        status, job, _ = call("CreateJob", org, body=body, headers={"Idempotency-Key": "same-key"})
        assert status == 201, job
    assert [event["action"] for event in stored_events(aws, org)] == ["job.create"]


def test_heartbeats_polls_and_reports_are_not_audited(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org)
    runner_id = live_runner(org, labels=["linux"])
    status, job, _ = call("CreateJob", org, body={"type": "scan", "repositoryConfig": "c", "labels": ["linux"]})
    assert status == 201
    before = len(stored_events(aws, org))
    claimed = polled_job(org, runner_id, labels=["linux"])
    assert claimed is not None
    report(org, runner_id, job["id"], "running")
    report(org, runner_id, job["id"], "completed", result={"ok": True})
    assert polled_job(org, runner_id, labels=["linux"]) is None
    assert len(stored_events(aws, org)) == before


# --- a refused change writes nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "body", "status"),
    [
        ("CreateRunner", {"name": ""}, 400),
        ("CreateTarget", {"name": "t", "url": "ftp://x", "visibility": "public"}, 400),
        ("CreateApiKey", {"name": "k", "scopes": ["no:such"]}, 400),
        ("CreateApiKey", {"name": "k", "scopes": ["admin:licenses"]}, 403),
        ("CreateJob", {"type": "scan", "labels": ["bad label"]}, 400),
        ("CreateEnrollmentToken", {"ttlSeconds": 5}, 400),
    ],
)
def test_invalid_input_writes_no_event(aws: AwsStack, logical_id: str, body: Any, status: int) -> None:
    org = unique_org()
    got, response, _ = call(logical_id, org, body=body)
    assert got == status, response
    assert stored_events(aws, org) == []


def test_refused_conditions_write_no_event(aws: AwsStack) -> None:
    org = unique_org()
    runner_id, _ = create_runner(org)
    # The free plan's runner limit: the transaction's org condition refuses the runner and its event.
    status, body, _ = call("CreateRunner", org, body={"name": "second"})
    assert status == 403 and body["error"]["code"] == "runner_limit_reached", body
    for logical_id, path in [
        ("UpdateRunner", {"runnerId": "rnr_0000000000000000"}),
        ("DeleteRunner", {"runnerId": "rnr_0000000000000000"}),
        ("MarkRunnerOffline", {"runnerId": "rnr_0000000000000000"}),
        ("RegenerateRunnerToken", {"runnerId": "rnr_0000000000000000"}),
        ("DeleteTarget", {"targetId": "tgt_0000000000000000"}),
        ("DeleteApiKey", {"keyId": "0123456789ab"}),
        ("CancelJob", {"jobId": "job_0000000000000000"}),
    ]:
        status, body, _ = call(logical_id, org, body={"name": "x"} if logical_id == "UpdateRunner" else ..., path=path)
        assert status == 404, (logical_id, body)
    # Another tenant's runner is a 404 too, and its log is untouched.
    other = unique_org()
    status, _, _ = call("DeleteRunner", other, path={"runnerId": runner_id})
    assert status == 404
    assert [event["action"] for event in stored_events(aws, org)] == ["runner.create"]
    assert stored_events(aws, other) == []


def test_regenerate_past_its_hourly_limit_writes_no_event(aws: AwsStack) -> None:
    org = unique_org()
    runner_id, _ = create_runner(org)
    statuses = [call("RegenerateRunnerToken", org, path={"runnerId": runner_id})[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    actions = [event["action"] for event in stored_events(aws, org)]
    assert actions == ["runner.regenerate_token"] * 5 + ["runner.create"]


TARGET_BODY = {"name": "t", "url": "https://x.example", "visibility": "public"}


def targets_of(org: str) -> list[Any]:
    status, body, _ = invoke("ListTargets", user_event("ListTargets", org, query={}))
    assert status == 200, body
    return list(body["targets"])


def test_a_transaction_that_never_commits_writes_neither_change_nor_event(aws: AwsStack) -> None:
    """The audit Put is in the change's transaction: when it cannot commit, neither does the change."""
    org = unique_org()
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Conflict(table=audit_store.table()), times=None)
        status, body, _ = call("CreateTarget", org, body=TARGET_BODY)
    assert status >= 400, body
    assert stored_events(aws, org) == [] and targets_of(org) == []


def test_a_committed_change_keeps_its_event_when_the_function_dies(aws: AwsStack) -> None:
    org = unique_org()
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", Crash())
        with pytest.raises(FunctionCrashed):
            call("CreateTarget", org, body=TARGET_BODY)
    (target,) = targets_of(org)
    (event,) = stored_events(aws, org)
    assert event["action"] == "target.create" and event["target"]["id"] == target["id"]


def test_a_lost_response_is_replayed_without_a_second_event(aws: AwsStack) -> None:
    org = unique_org()
    with DynamoFaults.installed() as faults:
        faults.inject("TransactWriteItems", LostResponse(), times=2)
        status, body, _ = call("CreateApiKey", org, body={"name": "k", "scopes": ["runners:read"]})
    assert status == 201, body
    assert [event["action"] for event in stored_events(aws, org)] == ["api_key.create"]


# --- the route ------------------------------------------------------------------------------------


def test_list_newest_first_pages_and_filters(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org)
    runner_ids = []
    for name in ("a", "b", "c"):
        runner_ids.append(create_runner(org, name)[0])
        clock.advance(1)
    middle = clock.iso()
    clock.advance(1)
    status, _, _ = call("UpdateRunner", org, body={"name": "b2"}, path={"runnerId": runner_ids[1]})
    assert status == 200
    status, body = listed(org, limit="2")
    assert status == 200, body
    assert [e["action"] for e in body["events"]] == ["runner.update", "runner.create"]
    assert body["events"][1]["target"]["id"] == runner_ids[2]
    assert set(body["events"][0]) == {"id", "action", "actor", "target", "orgId", "at", "sourceIp", "requestId"}
    status, rest = listed(org, limit="2", cursor=body["nextCursor"])
    assert [e["target"]["id"] for e in rest["events"]] == runner_ids[1::-1]
    status, last = listed(org, limit="2", cursor=rest["nextCursor"])
    assert [e["action"] for e in last["events"]] == ["license.update"] and last["nextCursor"] is None
    # One action's events, paged through the index.
    status, first = listed(org, action="runner.create", limit="2")
    assert [e["target"]["id"] for e in first["events"]] == runner_ids[:0:-1]
    status, second = listed(org, action="runner.create", limit="2", cursor=first["nextCursor"])
    assert [e["target"]["id"] for e in second["events"]] == runner_ids[:1]
    # From a time on (inclusive), alone and with an action.
    status, recent = listed(org, since=middle)
    assert [e["action"] for e in recent["events"]] == ["runner.update"], recent
    status, recent = listed(org, since=middle.replace("Z", "+00:00"), action="runner.create")
    assert recent == {"events": [], "nextCursor": None}
    status, all_of_today = listed(org, since=middle[:10])
    assert status == 200 and len(all_of_today["events"]) >= 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01"}, "since"),
        ({"since": "x" * 65}, "since"),
        ({"action": "runner.explode"}, "action"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_query_names_the_parameter(aws: AwsStack, query: dict[str, str], field: str) -> None:
    status, body = listed(unique_org(), **query)
    assert status == 400 and body["error"]["field"] == field, body


def test_cursor_of_one_list_is_refused_by_another(aws: AwsStack) -> None:
    org = unique_org()
    set_license(org)
    for name in ("a", "b"):
        create_runner(org, name)
    _, page = listed(org, limit="1")
    _, filtered = listed(org, action="runner.create", limit="1")
    # Another tenant's list, or the filtered list, does not take this list's cursor (nor the reverse).
    assert listed(unique_org(), cursor=page["nextCursor"])[0] == 400
    assert listed(org, action="runner.create", cursor=page["nextCursor"])[0] == 400
    assert listed(org, cursor=filtered["nextCursor"])[0] == 400
    assert listed(unique_org(), action="runner.create", cursor=filtered["nextCursor"])[0] == 400


def test_another_tenant_never_sees_the_events(aws: AwsStack) -> None:
    org, other = unique_org(), unique_org()
    create_runner(org)
    assert listed(other) == (200, {"events": [], "nextCursor": None})
    assert listed(other, action="runner.create") == (200, {"events": [], "nextCursor": None})
    assert len(listed(org)[1]["events"]) == 1


@pytest.mark.parametrize("scopes", ["", "runners:read runners:manage jobs:read keys:manage admin:licenses"])
def test_audit_read_scope_is_required(aws: AwsStack, scopes: str) -> None:
    org = unique_org()
    create_runner(org)
    status, body = listed(org, scopes=scopes)
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body


def test_events_past_their_retention_are_not_listed(aws: AwsStack) -> None:
    org = unique_org()
    create_runner(org)
    clock.advance(364 * 86400)
    assert len(listed(org)[1]["events"]) == 1
    clock.advance(2 * 86400)  # DynamoDB's TTL deletes it some time later; until then reads leave it out
    assert listed(org) == (200, {"events": [], "nextCursor": None})
    assert len(stored_events(aws, org)) == 1


def test_fixture_event_works_as_shipped(aws: AwsStack) -> None:
    status, body, _ = invoke("CreateRunner", load_event("CreateRunner"))
    assert status == 201
    status, listing, _ = invoke("ListAuditEvents", load_event("ListAuditEvents"))
    assert status == 200, listing
    assert [e["target"]["id"] for e in listing["events"]] == [body["data"]["_id"]]


def test_a_change_outside_any_request_is_the_system_operators(aws: AwsStack) -> None:
    """Local tooling (the dev API key `make run` prints) calls the domain directly."""
    from hangar.tenancy import api_keys

    org = unique_org()
    created = api_keys.create_api_key(org, "dev", ["runners:read"], created_by="local")
    (event,) = stored_events(aws, org)
    assert event["actor"] == {"type": "operator", "id": "system"} and event["target"]["id"] == created.id
    assert "sourceIp" not in event and "requestId" not in event
