"""API keys (/v1/api-keys) in-process against moto: shown once, scoped, listed, used, revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hangar.core import clock
from hangar.core.errors import Unauthorized
from hangar.identity import credentials
from hangar.store import dynamo
from hangar.store import tokens as token_store
from hangar.tenancy import api_keys
from support import ALL_BUT_OPERATOR, AwsStack, invoke, load_event, unique_org, user_event


def create(org: str, body: Any, scopes: str = ALL_BUT_OPERATOR) -> tuple[int, Any]:
    status, response, _ = invoke("CreateApiKey", user_event("CreateApiKey", org, scopes=scopes, body=body))
    return status, response


def created(org: str, scopes: list[str], name: str = "ci") -> dict[str, Any]:
    status, body = create(org, {"name": name, "scopes": scopes})
    assert status == 201, body
    return dict(body)


def listed(org: str, scopes: str = "keys:manage", **query: str) -> tuple[int, Any]:
    status, body, _ = invoke("ListApiKeys", user_event("ListApiKeys", org, scopes=scopes, query=query))
    return status, body


def delete(org: str, key_id: str, scopes: str = "keys:manage") -> tuple[int, Any]:
    event = user_event("DeleteApiKey", org, scopes=scopes, path_params={"keyId": key_id})
    status, body, _ = invoke("DeleteApiKey", event)
    return status, body


def count_updates() -> list[str]:
    calls: list[str] = []
    dynamo.client().meta.events.register("before-call.dynamodb.UpdateItem", lambda model, **_: calls.append(model.name))
    return calls


def test_create_shows_the_token_once_and_it_authenticates(aws: AwsStack) -> None:
    org = unique_org()
    key = created(org, ["runners:read", "jobs:read"])
    assert set(key) == {"id", "name", "scopes", "tokenPrefix", "token", "createdAt"}
    assert key["token"].startswith(f"hgk_{key['id']}_") and key["tokenPrefix"] == key["id"]
    assert key["scopes"] == ["runners:read", "jobs:read"]
    for headers in ({"X-API-Key": key["token"]}, {"Authorization": "Bearer " + key["token"]}):
        principal = credentials.authenticate_user(headers)
        assert principal.org_id == org and principal.kind == "apikey" and principal.key_id == key["id"]
        assert principal.scopes == frozenset({"runners:read", "jobs:read"})
    status, body = listed(org)
    assert status == 200 and body["nextCursor"] is None
    [entry] = body["apiKeys"]
    assert set(entry) == {"id", "name", "scopes", "tokenPrefix", "createdAt", "lastUsedAt"}
    assert entry["id"] == key["id"] and entry["lastUsedAt"] is not None  # it was just used
    text = json.dumps(body)
    assert key["token"] not in text and "hash" not in text
    stored = token_store.get_token(key["id"])
    assert stored is not None and stored["kind"] == "apikey" and stored["apiKeyOrg"] == org
    assert stored["hash"] != key["token"] and stored["createdBy"]
    assert key["token"] not in str(aws.scan_all())  # only the HMAC is stored


def test_delete_revokes_at_once(aws: AwsStack) -> None:
    org = unique_org()
    key = created(org, ["runners:read"])
    assert credentials.authenticate_user({"X-API-Key": key["token"]}).org_id == org
    status, body = delete(org, key["id"])
    assert status == 200 and body == {"id": key["id"], "deleted": True}
    for headers in ({"X-API-Key": key["token"]}, {"Authorization": "Bearer " + key["token"]}):
        with pytest.raises(Unauthorized):
            credentials.authenticate_user(headers)
    assert listed(org)[1]["apiKeys"] == []
    assert delete(org, key["id"])[0] == 404


def test_other_tenant_cannot_see_or_delete_a_key(aws: AwsStack) -> None:
    owner, other = unique_org(), unique_org()
    key = created(owner, ["runners:read"])
    status, body = delete(other, key["id"])
    assert status == 404 and body["error"]["code"] == "not_found"
    assert listed(other)[1]["apiKeys"] == []
    assert credentials.authenticate_user({"X-API-Key": key["token"]}).org_id == owner  # still valid
    # Ids that are not API keys at all: a runner token's id, junk; one longer than any id is invalid input.
    status, runner, _ = invoke("CreateRunner", user_event("CreateRunner", owner, body={"name": "r"}))
    assert status == 201
    for key_id in (runner["data"]["tokenPrefix"], "not-an-id"):
        assert delete(owner, key_id)[0] == 404, key_id
    status, body = delete(owner, "f" * 300)
    assert status == 400 and body["error"]["field"] == "keyId"
    assert token_store.get_token(runner["data"]["tokenPrefix"]) is not None


def test_scope_rules(aws: AwsStack) -> None:
    org = unique_org()
    # Never wider than the creator's own scopes.
    status, body = create(
        org, {"name": "k", "scopes": ["runners:read", "runners:manage"]}, scopes="keys:manage runners:read"
    )
    assert status == 403 and body["error"]["code"] == "scope_escalation" and body["error"]["field"] == "scopes"
    # Never the operator scope, not even for an operator.
    status, body = create(org, {"name": "k", "scopes": ["admin:licenses"]}, scopes=ALL_BUT_OPERATOR + " admin:licenses")
    assert status == 403 and body["error"]["code"] == "scope_not_grantable"
    # An API key that may manage keys can make narrower ones, not wider ones.
    parent = created(org, ["keys:manage", "runners:read"])
    principal = credentials.authenticate_user({"X-API-Key": parent["token"]})
    child = api_keys.create_api_key(org, "child", ["runners:read"], principal.subject, principal.scopes)
    assert child.scopes == ["runners:read"] and child.token.startswith("hgk_")
    status, body = create(org, {"name": "k", "scopes": ["jobs:manage"]}, scopes=" ".join(sorted(principal.scopes)))
    assert status == 403 and body["error"]["code"] == "scope_escalation"
    # Duplicates collapse; order follows the scope list.
    assert created(org, ["jobs:read", "runners:read", "jobs:read"])["scopes"] == ["runners:read", "jobs:read"]


def test_keys_manage_is_required_everywhere(aws: AwsStack) -> None:
    org = unique_org()
    key = created(org, ["runners:read"])
    read_only = "runners:read jobs:read targets:read"
    status, body = create(org, {"name": "k", "scopes": ["runners:read"]}, scopes=read_only)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert listed(org, scopes=read_only)[0] == 403
    assert delete(org, key["id"], scopes=read_only)[0] == 403


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, "body"),
        ({"scopes": ["runners:read"]}, 400, "name"),
        ({"name": "", "scopes": ["runners:read"]}, 400, "name"),
        ({"name": "k"}, 400, "scopes"),
        ({"name": "k", "scopes": []}, 400, "scopes"),
        ({"name": "k", "scopes": "runners:read"}, 400, "scopes"),
        ({"name": "k", "scopes": ["runners:write"]}, 400, "scopes"),
        ({"name": "k", "scopes": ["runners:read"], "expires": 1}, 400, "expires"),
    ],
)
def test_bad_input_names_the_field(aws: AwsStack, body: Any, status: int, field: str) -> None:
    got, response = create(unique_org(), body)
    assert got == status, response
    assert response["error"]["field"] == field


def test_last_used_is_written_at_most_once_a_minute(aws: AwsStack) -> None:
    org = unique_org()
    key = created(org, ["runners:read"])
    assert listed(org)[1]["apiKeys"][0]["lastUsedAt"] is None
    updates = count_updates()
    credentials.authenticate_user({"X-API-Key": key["token"]})
    first = listed(org)[1]["apiKeys"][0]["lastUsedAt"]
    assert first is not None and len(updates) == 1
    for _ in range(5):
        credentials.authenticate_user({"X-API-Key": key["token"]})
    assert len(updates) == 1  # no write while lastUsedAt is fresh
    clock.advance(61)
    credentials.authenticate_user({"Authorization": "Bearer " + key["token"]})
    assert len(updates) == 2
    assert listed(org)[1]["apiKeys"][0]["lastUsedAt"] > first


def test_list_pages_newest_first(aws: AwsStack) -> None:
    org = unique_org()
    ids = []
    for index in range(5):
        ids.append(created(org, ["runners:read"], name=f"k{index}")["id"])
        clock.advance(1)  # distinct createdAt
    seen: list[str] = []
    cursor: str | None = None
    while True:
        status, body = listed(org, limit="2", **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        seen += [entry["id"] for entry in body["apiKeys"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    first_cursor = listed(org, limit="2")[1]["nextCursor"]
    status, body = listed(unique_org(), cursor=first_cursor)
    assert status == 400 and body["error"]["field"] == "cursor"


def test_domain_function_for_local_dev(aws: AwsStack) -> None:
    created_key = api_keys.create_api_key(org_id="demo", name="dev", scopes=["runners:read"], created_by="local")
    assert created_key.token.startswith("hgk_") and created_key.token_prefix == created_key.id
    assert credentials.authenticate_user({"X-API-Key": created_key.token}).org_id == "demo"


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    status, body, _ = invoke("CreateApiKey", load_event("CreateApiKey"))
    assert status == 201, body
    status, listed_body, _ = invoke("ListApiKeys", load_event("ListApiKeys"))
    assert status == 200 and [entry["id"] for entry in listed_body["apiKeys"]] == [body["id"]]
    assert invoke("DeleteApiKey", load_event("DeleteApiKey"))[0] == 404
