"""The authorizers in-process: credentials in, Allow + context + usage key out, or a Deny naming the reason."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hangar.core.config import JWT_SECRET_NOT_SET, get_settings
from hangar.identity.tokens import BASE62
from hangar.store import dynamo, orgs
from support import (
    AwsStack,
    FakeLambdaContext,
    handler_module,
    invoke,
    is_refusal,
    load_event,
    refusal_reason,
    template,
    unique_org,
    user_event,
)

from local.devtokens import mint_dev_jwt

FLEET_SCOPES = "runners:read runners:manage"


def authorize(logical_id: str, headers: dict[str, str], query: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event(logical_id))
    event["headers"] = headers
    event["queryStringParameters"] = query
    return handler_module(logical_id).handler(event, FakeLambdaContext())


def count_dynamodb_calls() -> list[str]:
    calls: list[str] = []
    dynamo.client().meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def test_user_jwt_is_allowed_and_tenant_provisioned(aws: AwsStack) -> None:
    org = unique_org()
    assert orgs.get_org(org) is None
    policy = authorize("UserAuthorizer", {"Authorization": f"Bearer {mint_dev_jwt(org, FLEET_SCOPES)}"})
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Resource"].endswith("/prod/*")
    assert policy["context"]["orgId"] == org
    assert set(policy["context"]["scopes"].split()) == {"runners:read", "runners:manage"}
    provisioned = orgs.get_org(org)
    assert provisioned is not None and provisioned.plan == "free" and provisioned.license_state == "active"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-jwt"},
        {"X-API-Key": "hgk_000000000000_notavalidkeyatall"},
    ],
)
def test_bad_user_credentials_are_401(aws: AwsStack, headers: dict[str, str]) -> None:
    assert is_refusal(authorize("UserAuthorizer", headers))


def test_expired_jwt_is_401_token_expired(aws: AwsStack) -> None:
    # Issued six minutes ago for five: expired 61 s ago.
    expired = mint_dev_jwt(unique_org(), FLEET_SCOPES, ttl=300, now=time.time() - 361)
    assert refusal_reason(authorize("UserAuthorizer", {"Authorization": f"Bearer {expired}"})) == {
        "errorCode": "token_expired",
        "errorMessage": "Token has expired",
    }


def test_a_refusal_renders_as_the_templates_401_body_even_with_quotes_in_its_message(aws: AwsStack) -> None:
    """Gateway response templates substitute without escaping: the authorizer's message is JSON-safe."""
    from hangar.api.authorizer import deny
    from hangar.core.errors import Unauthorized

    from local.gateway import render_template
    from local.template import gateway_responses

    access_denied = gateway_responses(template())["ACCESS_DENIED"]
    refusal = deny(
        "arn:aws:execute-api:r:a:api/prod/GET/x", Unauthorized('a "quoted" \\ message', code="jwks_unavailable")
    )
    variables = {f"authorizer.{key}": value for key, value in refusal["context"].items()}
    body = json.loads(render_template(access_denied.templates["application/json"], variables))
    assert access_denied.status == 401
    assert body == {"success": False, "error": {"code": "jwks_unavailable", "message": 'a "quoted" \\ message'}}


def test_runner_token_allowed_with_version_and_labels(aws: AwsStack) -> None:
    org = unique_org()
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r", "labels": ["linux"]}))
    assert status == 201
    policy = authorize("RunnerAuthorizer", {"X-Runner-Token": body["data"]["token"]})
    assert policy["context"] == {
        "principalType": "runner",
        "orgId": org,
        "runnerId": body["data"]["_id"],
        "tokenVersion": 1,
        "tokenId": body["data"]["tokenPrefix"],
        "labels": "linux",
    }
    # The install-script authorizer takes the same token from the query string.
    assert authorize("RunnerAuthorizer", {}, {"token": body["data"]["token"]})["context"]["orgId"] == org


def test_every_single_character_change_is_refused_before_any_dynamodb_call(aws: AwsStack) -> None:
    org = unique_org()
    _, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r"}))
    token = body["data"]["token"]
    calls = count_dynamodb_calls()
    for index, original in enumerate(token):
        for replacement in set(BASE62 + "_") - {original}:
            mutated = token[:index] + replacement + token[index + 1 :]
            assert is_refusal(authorize("RunnerAuthorizer", {"X-Runner-Token": mutated}))
    assert calls == []
    authorize("RunnerAuthorizer", {"X-Runner-Token": token})
    assert calls == ["GetItem"]


def test_deleted_runner_token_is_refused(aws: AwsStack) -> None:
    org = unique_org()
    _, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r"}))
    status, _, _ = invoke(
        "DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": body["data"]["_id"]})
    )
    assert status == 200
    assert is_refusal(authorize("RunnerAuthorizer", {"X-Runner-Token": body["data"]["token"]}))


@pytest.fixture(params=["", JWT_SECRET_NOT_SET], ids=["empty", "placeholder"])
def no_jwt_secret(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A deployment with JwtAlgorithms=HS256 that never set JwtSecret: what the template passed before
    (empty, which read as "unset" and fell back to the local secret), and its placeholder now."""
    monkeypatch.setenv("JWT_SECRET", request.param)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_hs256_without_a_secret_refuses_a_token_signed_with_the_public_local_secret(
    aws: AwsStack, no_jwt_secret: None
) -> None:
    """Was an Allow: the secret defaulted to the string in this repository (issue 10, item 3)."""
    operator = mint_dev_jwt(unique_org(), "admin:licenses runners:manage")
    assert is_refusal(authorize("UserAuthorizer", {"Authorization": f"Bearer {operator}"}))
