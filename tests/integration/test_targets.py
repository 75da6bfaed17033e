"""Targets (/v1/targets) in-process against moto: create within limits, list, get, delete."""

from __future__ import annotations

import re
from typing import Any

import pytest
from builders import put_license
from hangar.core.errors import NotFound
from hangar.core.plans import PLANS
from hangar.store import orgs
from hangar.tenancy import targets
from support import AwsStack, invoke, load_event, unique_org, user_event


def create(org: str, body: Any = None, scopes: str | None = None) -> tuple[int, Any]:
    body = body if body is not None else {"name": "site", "url": "https://example.com/app", "visibility": "public"}
    event = user_event("CreateTarget", org, body=body, **({"scopes": scopes} if scopes else {}))
    status, response, _ = invoke("CreateTarget", event)
    return status, response


def created(org: str, **fields: str) -> dict[str, Any]:
    status, body = create(org, {"name": "site", "url": "https://example.com", "visibility": "public", **fields})
    assert status == 201, body
    return dict(body)


def call(logical_id: str, org: str, target_id: str, scopes: str | None = None) -> tuple[int, Any]:
    event = user_event(logical_id, org, path_params={"targetId": target_id}, **({"scopes": scopes} if scopes else {}))
    status, body, _ = invoke(logical_id, event)
    return status, body


def test_create_get_list_delete(aws: AwsStack) -> None:
    org = unique_org()
    status, body = create(
        org, {"name": "staging", "url": "https://staging.example.com:8443/x?y=1", "visibility": "public"}
    )
    assert status == 201, body
    assert set(body) == {"id", "name", "url", "visibility", "createdAt"}
    assert re.fullmatch(r"tgt_[0-9a-f]{16}", body["id"])
    assert body["url"] == "https://staging.example.com:8443/x?y=1"  # kept as written
    status, got = call("GetTarget", org, body["id"])
    assert status == 200 and got == body
    status, listed, _ = invoke("ListTargets", user_event("ListTargets", org))
    assert status == 200 and listed == {"targets": [body], "nextCursor": None}
    stored_org = orgs.get_org(org)
    assert stored_org is not None and stored_org.target_count == 1
    status, deleted = call("DeleteTarget", org, body["id"])
    assert status == 200 and deleted == {"id": body["id"], "deleted": True}
    assert call("GetTarget", org, body["id"])[0] == 404
    assert call("DeleteTarget", org, body["id"])[0] == 404  # a second delete does not decrement again
    stored_org = orgs.get_org(org)
    assert stored_org is not None and stored_org.target_count == 0


def test_other_tenant_gets_404(aws: AwsStack) -> None:
    owner, other = unique_org(), unique_org()
    target = created(owner)
    for logical_id in ("GetTarget", "DeleteTarget"):
        status, body = call(logical_id, other, target["id"])
        assert status == 404 and body["error"]["code"] == "not_found", (logical_id, body)
    status, listed, _ = invoke("ListTargets", user_event("ListTargets", other))
    assert listed["targets"] == []
    assert call("GetTarget", owner, target["id"])[0] == 200  # untouched
    assert call("GetTarget", owner, "tgt_" + "0" * 16)[0] == 404
    status, body = call("GetTarget", owner, "x" * 300)  # longer than any id: invalid input (documented)
    assert status == 400 and body["error"]["field"] == "targetId"


def test_scopes(aws: AwsStack) -> None:
    org = unique_org()
    target = created(org)
    status, body = create(org, scopes="targets:read")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert call("DeleteTarget", org, target["id"], scopes="targets:read")[0] == 403
    assert call("GetTarget", org, target["id"], scopes="targets:manage runners:read")[0] == 403
    status, _, _ = invoke("ListTargets", user_event("ListTargets", org, scopes="runners:read"))
    assert status == 403
    assert call("GetTarget", org, target["id"], scopes="targets:read")[0] == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ({"url": "https://a.example", "visibility": "public"}, "name"),
        ({"name": "", "url": "https://a.example", "visibility": "public"}, "name"),
        ({"name": "t", "visibility": "public"}, "url"),
        ({"name": "t", "url": "ftp://a.example", "visibility": "public"}, "url"),
        ({"name": "t", "url": "example.com", "visibility": "public"}, "url"),
        ({"name": "t", "url": "https://", "visibility": "public"}, "url"),
        ({"name": "t", "url": "https://a.example/x y", "visibility": "public"}, "url"),
        ({"name": "t", "url": "https://a.example/" + "x" * 2048, "visibility": "public"}, "url"),
        ({"name": "t", "url": 5, "visibility": "public"}, "url"),
        ({"name": "t", "url": "https://a.example"}, "visibility"),
        ({"name": "t", "url": "https://a.example", "visibility": "secret"}, "visibility"),
        ({"name": "t", "url": "https://a.example", "visibility": "public", "owner": "x"}, "owner"),
    ],
)
def test_bad_input_names_the_field(aws: AwsStack, body: Any, field: str) -> None:
    status, response = create(unique_org(), body)
    assert status == 400, response
    assert response["error"]["field"] == field


def test_url_of_2048_characters_is_accepted(aws: AwsStack) -> None:
    url = "https://a.example/" + "x" * (2048 - len("https://a.example/"))
    assert created(unique_org(), url=url)["url"] == url


def test_target_limit_is_enforced_and_freed_by_delete(aws: AwsStack) -> None:
    org = unique_org()
    made = [created(org) for _ in range(PLANS["free"].targetLimit)]
    status, body = create(org)
    assert status == 403 and body["error"]["code"] == "target_limit_reached"
    assert call("DeleteTarget", org, made[0]["id"])[0] == 200
    assert create(org)[0] == 201
    put_license(org, targetLimit=5)
    assert create(org)[0] == 201 and create(org)[0] == 201
    assert create(org)[0] == 403


def test_visibility_the_plan_does_not_allow(aws: AwsStack) -> None:
    org = unique_org()
    for visibility in ("staging_preview", "private_internal", "localhost"):
        status, body = create(org, {"name": "t", "url": "http://localhost:8080", "visibility": visibility})
        assert status == 403 and body["error"]["code"] == "visibility_not_allowed", body
    put_license(org, plan="team")
    assert created(org, url="http://localhost:8080", visibility="localhost")["visibility"] == "localhost"
    put_license(org, allowedTargetVisibilities=["public", "staging_preview"])
    assert create(org, {"name": "t", "url": "http://10.0.0.1", "visibility": "private_internal"})[0] == 403
    stored_org = orgs.get_org(org)
    assert stored_org is not None and stored_org.target_count == 1  # refusals count nothing


def test_inactive_license_refuses_new_targets(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, licenseState="suspended")
    status, body = create(org)
    assert status == 403 and body["error"]["code"] == "license_inactive"


def test_list_pages_with_limit_and_cursor(aws: AwsStack) -> None:
    org = unique_org()
    put_license(org, plan="team")
    ids = sorted(created(org)["id"] for _ in range(5))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body, _ = invoke("ListTargets", user_event("ListTargets", org, query=query))
        assert status == 200, body
        seen += [target["id"] for target in body["targets"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ids
    first = invoke("ListTargets", user_event("ListTargets", org, query={"limit": "2"}))[1]
    for query, field in [
        ({"cursor": "garbage!"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
    ]:
        status, body, _ = invoke("ListTargets", user_event("ListTargets", org, query=query))
        assert status == 400 and body["error"]["field"] == field, (query, body)
    # Another tenant cannot page through this tenant's targets with its cursor.
    status, body, _ = invoke(
        "ListTargets", user_event("ListTargets", unique_org(), query={"cursor": first["nextCursor"]})
    )
    assert status == 400 and body["error"]["field"] == "cursor"


def test_domain_exports_for_jobs(aws: AwsStack) -> None:
    org = unique_org()
    target = created(org)
    assert targets.get_target(org, target["id"]).visibility == "public"
    with pytest.raises(NotFound) as refused:
        targets.get_target(unique_org(), target["id"])
    assert refused.value.field == "targetId"
    assert targets.visibility_allowed(PLANS["free"], "public") is True
    assert targets.visibility_allowed(PLANS["free"], "localhost") is False
    assert targets.visibility_allowed(PLANS["team"], "localhost") is True


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    status, body, _ = invoke("CreateTarget", load_event("CreateTarget"))
    assert status == 201, body
    status, body, _ = invoke("ListTargets", load_event("ListTargets"))
    assert status == 200 and len(body["targets"]) == 1
    assert invoke("GetTarget", load_event("GetTarget"))[0] == 404  # the fixture's id is not one we made
