"""Tenant provisioning and usage-plan keys against moto's API Gateway: one key per tenant (idempotent and
race-safe), in the usage plan of its license plan, moved when the plan changes, returned by the authorizers."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from faults import DynamoFaults, LostResponse
from hangar.core.config import get_settings
from hangar.store import orgs, usage_keys
from hangar.store.transactions import transact
from hangar.tenancy import tenants, usage_plans
from support import (
    AwsStack,
    FakeLambdaContext,
    handler_module,
    invoke,
    load_event,
    unique_org,
    user_event,
)

from local.devtokens import mint_dev_jwt

FLEET_SCOPES = "runners:read runners:manage"

PREFIX = "hangar-test-"
PLANS = ("free", "team", "enterprise")


@dataclass
class Plans:
    apigateway: Any
    ids: dict[str, str]  # license plan (and "public") -> usage plan id

    def keys_in(self, plan: str) -> set[str]:
        items = self.apigateway.get_usage_plan_keys(usagePlanId=self.ids[plan])["items"]
        return {item["id"] for item in items}

    def plans_of(self, key_id: str) -> set[str]:
        by_id = {plan_id: name for name, plan_id in self.ids.items()}
        return {by_id[plan["id"]] for plan in self.apigateway.get_usage_plans(keyId=key_id)["items"]}

    def tenant_keys(self, org_id: str) -> list[dict[str, Any]]:
        name = usage_plans.tenant_key_name(org_id)
        items = self.apigateway.get_api_keys(nameQuery=name, includeValues=True)["items"]
        return [item for item in items if item["name"] == name]


def _forget_caches() -> None:
    get_settings.cache_clear()
    usage_keys.client.cache_clear()
    usage_keys.forget_usage_plans()
    usage_plans._key_value.cache_clear()


@pytest.fixture
def plans(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plans]:
    """Usage plans named as template.yaml names them (`<prefix><plan>`), found by name like in AWS."""
    apigateway = boto3.client("apigateway", region_name="us-east-1")
    ids = {
        plan: apigateway.create_usage_plan(name=f"{PREFIX}{plan}", throttle={"rateLimit": 10.0, "burstLimit": 20})["id"]
        for plan in (*PLANS, "public")
    }
    public_key = apigateway.create_api_key(name=f"{PREFIX}public", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=ids["public"], keyId=public_key["id"], keyType="API_KEY")
    monkeypatch.setenv("USAGE_PLAN_NAME_PREFIX", PREFIX)
    monkeypatch.setenv("PUBLIC_USAGE_KEY_ID", public_key["id"])
    _forget_caches()
    try:
        yield Plans(apigateway, ids)
    finally:
        monkeypatch.delenv("USAGE_PLAN_NAME_PREFIX")
        monkeypatch.delenv("PUBLIC_USAGE_KEY_ID")
        _forget_caches()


def authorize(logical_id: str, headers: dict[str, str]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(logical_id))
    event["headers"] = headers
    result: dict[str, Any] = handler_module(logical_id).handler(event, FakeLambdaContext())
    return result


# -- provisioning ------------------------------------------------------------------------------------


def test_provisioning_creates_one_key_in_the_default_plans_usage_plan(plans: Plans) -> None:
    org_id = unique_org()
    org = tenants.provision_tenant(org_id)
    keys = plans.tenant_keys(org_id)
    assert len(keys) == 1
    key = keys[0]
    assert key["enabled"] is True
    assert (org.usage_key_id, org.usage_key) == (key["id"], key["value"])
    assert org.plan == "free"
    assert plans.plans_of(key["id"]) == {"free"}
    stored = orgs.get_org(org_id)
    assert stored is not None and (stored.usage_key_id, stored.usage_key) == (key["id"], key["value"])


def test_provisioning_is_idempotent(plans: Plans) -> None:
    org_id = unique_org()
    first = tenants.provision_tenant(org_id)
    calls: list[str] = []
    usage_keys.client().meta.events.register("before-call.api-gateway.*", lambda model, **_: calls.append(model.name))
    again = tenants.provision_tenant(org_id)
    assert again.usage_key == first.usage_key
    assert calls == []  # a provisioned tenant costs no API Gateway call
    assert len(plans.tenant_keys(org_id)) == 1


@pytest.fixture
def serial_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plans]:
    """local/'s backend (moto server, one call at a time, so a conditional write is atomic as in DynamoDB;
    moto in-process is not) with the tables and usage plans; for concurrency."""
    from support import clear_client_caches, template

    from local.backend import SerialMotoServer
    from local.template import create_tables

    server = SerialMotoServer("127.0.0.1", 0)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    clear_client_caches()
    try:
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), template())
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        ids = {plan: apigateway.create_usage_plan(name=f"{PREFIX}{plan}")["id"] for plan in PLANS}
        monkeypatch.setenv("USAGE_PLAN_NAME_PREFIX", PREFIX)
        _forget_caches()
        yield Plans(apigateway, ids)
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        monkeypatch.delenv("USAGE_PLAN_NAME_PREFIX")
        _forget_caches()
        clear_client_caches()
        server.stop()


def test_concurrent_first_requests_leave_exactly_one_key(serial_backend: Plans) -> None:
    org_id = unique_org()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: tenants.provision_tenant(org_id), range(8)))
    keys = serial_backend.tenant_keys(org_id)
    assert len(keys) == 1
    assert {result.usage_key for result in results} == {keys[0]["value"]}
    assert serial_backend.keys_in("free") == {keys[0]["id"]}


def test_the_loser_of_a_provisioning_race_deletes_its_key(plans: Plans, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic race: another request records its key between our read of the org and our write."""
    org_id = unique_org()
    winner = tenants.provision_tenant(org_id)
    stale = replace(winner, usage_key_id=None, usage_key=None)
    monkeypatch.setattr(tenants.orgs, "ensure_org", lambda _org_id: stale)
    result = tenants.provision_tenant(org_id)
    assert result.usage_key == winner.usage_key
    keys = plans.tenant_keys(org_id)
    assert [key["id"] for key in keys] == [winner.usage_key_id]
    assert plans.keys_in("free") == {winner.usage_key_id}  # the loser's key left its plan with it


def test_a_license_change_during_provisioning_is_followed(plans: Plans, monkeypatch: pytest.MonkeyPatch) -> None:
    org_id = unique_org()
    orgs.ensure_org(org_id)
    attach = usage_keys.attach_key

    def attach_then_operator_upgrades(plan_id: str, key_id: str) -> None:
        attach(plan_id, key_id)
        monkeypatch.setattr(usage_keys, "attach_key", attach)  # once
        fields = {"plan": "team", "licenseState": "active", "overrides": {}}
        transact({"org": orgs.put_license_op(org_id, fields, None, "2026-12-01T00:00:00.000Z")})

    monkeypatch.setattr(usage_keys, "attach_key", attach_then_operator_upgrades)
    org = tenants.provision_tenant(org_id)
    assert org.plan == "team"
    assert plans.plans_of(org.usage_key_id) == {"team"}


def test_default_plan_comes_from_settings(plans: Plans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_PLAN", "team")
    get_settings.cache_clear()
    org = tenants.provision_tenant(unique_org())
    assert org.plan == "team" and plans.plans_of(org.usage_key_id) == {"team"}


def test_explicit_usage_plan_ids_win_over_names(plans: Plans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_PLAN_IDS", f"free={plans.ids['enterprise']}")
    get_settings.cache_clear()
    org = tenants.provision_tenant(unique_org())
    assert plans.plans_of(org.usage_key_id) == {"enterprise"}


def test_without_usage_plans_tenants_get_no_key(aws: AwsStack) -> None:
    _forget_caches()
    calls: list[str] = []
    usage_keys.client().meta.events.register("before-call.api-gateway.*", lambda model, **_: calls.append(model.name))
    org = tenants.provision_tenant(unique_org())
    assert org.usage_key is None and calls == []


def test_a_plan_without_a_usage_plan_leaves_the_tenant_without_a_key(
    plans: Plans, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans.apigateway.delete_usage_plan(usagePlanId=plans.ids["free"])
    usage_keys.forget_usage_plans()
    org_id = unique_org()
    org = tenants.provision_tenant(org_id)
    assert org.usage_key is None and plans.tenant_keys(org_id) == []


# -- moving between plans ----------------------------------------------------------------------------


def test_moving_plans_moves_the_key(plans: Plans) -> None:
    org = tenants.provision_tenant(unique_org())
    key_id = org.usage_key_id
    for plan in ("team", "enterprise", "enterprise", "free"):
        usage_plans.move_tenant_to_plan(org, plan)
        assert plans.plans_of(key_id) == {plan}
    assert key_id in plans.keys_in("free") and key_id not in plans.keys_in("team")


def test_put_license_moves_the_key_and_keeps_its_value(plans: Plans) -> None:
    org_id = unique_org()
    org = tenants.provision_tenant(org_id)
    status, body, _ = invoke(
        "PutOrgLicense",
        user_event("PutOrgLicense", org_id, body={"plan": "enterprise"}, path_params={"orgId": org_id}),
    )
    assert status == 200, body
    assert plans.plans_of(org.usage_key_id) == {"enterprise"}
    stored = orgs.get_org(org_id)
    assert stored is not None and stored.usage_key == org.usage_key  # runner tokens keep working


def test_put_license_for_an_unseen_org_keys_it_on_first_use_in_the_new_plan(plans: Plans) -> None:
    org_id = unique_org()
    status, body, _ = invoke(
        "PutOrgLicense", user_event("PutOrgLicense", org_id, body={"plan": "team"}, path_params={"orgId": org_id})
    )
    assert status == 200, body
    assert plans.tenant_keys(org_id) == []
    org = tenants.provision_tenant(org_id)
    assert plans.plans_of(org.usage_key_id) == {"team"}


# -- the authorizers return the key ------------------------------------------------------------------


def test_user_authorizer_provisions_and_returns_the_usage_key(plans: Plans) -> None:
    org_id = unique_org()
    policy = authorize("UserAuthorizer", {"Authorization": f"Bearer {mint_dev_jwt(org_id, FLEET_SCOPES)}"})
    stored = orgs.get_org(org_id)
    assert stored is not None and policy["usageIdentifierKey"] == stored.usage_key
    assert plans.plans_of(stored.usage_key_id) == {"free"}


def test_runner_tokens_carry_the_tenants_key_to_the_runner_authorizer(plans: Plans) -> None:
    org_id = unique_org()
    org = tenants.provision_tenant(org_id)
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org_id, body={"name": "r1", "labels": []}))
    assert status == 201, body
    policy = authorize("RunnerAuthorizer", {"X-Runner-Token": body["data"]["token"]})
    assert policy["usageIdentifierKey"] == org.usage_key
    # Unchanged by a plan move: the key's value stays, only its usage plan changes.
    usage_plans.move_tenant_to_plan(org, "team")
    policy = authorize("RunnerAuthorizer", {"X-Runner-Token": body["data"]["token"]})
    assert policy["usageIdentifierKey"] == org.usage_key


def test_public_authorizer_returns_the_templates_public_key(plans: Plans) -> None:
    expected = plans.apigateway.get_api_key(apiKey=get_settings().public_usage_key_id, includeValue=True)["value"]
    calls: list[str] = []
    usage_keys.client().meta.events.register("before-call.api-gateway.*", lambda model, **_: calls.append(model.name))
    for _ in range(3):
        policy = authorize("PublicAuthorizer", {})
        assert policy["usageIdentifierKey"] == expected
    assert calls == ["GetApiKey"]  # read once per container


def test_past_the_api_key_quota_the_new_tenant_fails_and_no_key_is_recorded(
    plans: Plans, monkeypatch: pytest.MonkeyPatch
) -> None:
    def quota_reached(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "limit"}}, "CreateApiKey")

    monkeypatch.setattr(usage_keys.client(), "create_api_key", quota_reached)
    org_id = unique_org()
    with pytest.raises(usage_keys.ApiKeyQuotaReached):
        tenants.provision_tenant(org_id)
    stored = orgs.get_org(org_id)
    assert stored is not None and stored.usage_key_id is None  # the next request tries again


# -- bounded: past TENANT_KEY_LIMIT new tenants share their plan's key (issue 10, item 10) ------------


@pytest.fixture
def key_limit(plans: Plans, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("TENANT_KEY_LIMIT", "2")
    get_settings.cache_clear()
    yield 2
    monkeypatch.delenv("TENANT_KEY_LIMIT")
    get_settings.cache_clear()


def all_api_keys(plans: Plans) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    for page in plans.apigateway.get_paginator("get_api_keys").paginate():
        keys.extend(page["items"])
    return keys


def test_open_sign_up_cannot_exhaust_the_regions_api_keys(plans: Plans, key_limit: int) -> None:
    """Was one API Gateway key per new `sub`: with open sign-up anyone could use up the 10,000."""
    before = len(all_api_keys(plans))
    provisioned = [tenants.provision_tenant(unique_org()) for _ in range(key_limit + 5)]
    assert len(all_api_keys(plans)) == before + key_limit + 1  # their own keys, and one shared key
    own, pooled = provisioned[:key_limit], provisioned[key_limit:]
    assert len({org.usage_key_id for org in own}) == key_limit and not any(org.usage_key_shared for org in own)
    assert len({org.usage_key_id for org in pooled}) == 1 and all(org.usage_key_shared for org in pooled)
    assert plans.plans_of(pooled[0].usage_key_id) == {"free"}  # counted under its plan, like the others
    token = mint_dev_jwt(str(pooled[0].org_id), FLEET_SCOPES)
    policy = authorize("UserAuthorizer", {"Authorization": f"Bearer {token}"})
    assert policy["usageIdentifierKey"] == pooled[0].usage_key


def test_a_licensed_tenant_leaves_the_shared_key_and_its_runners_follow(plans: Plans, key_limit: int) -> None:
    for _ in range(key_limit):
        tenants.provision_tenant(unique_org())
    org_id = unique_org()
    pooled = tenants.provision_tenant(org_id)
    assert pooled.usage_key_shared is True
    status, enroll, _ = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", org_id, body={}))
    assert status == 201, enroll
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org_id, body={"name": "r1"}))
    assert status == 201, body
    runner_token = body["data"]["token"]
    event = user_event("PutOrgLicense", "operators", body={"plan": "team"}, path_params={"orgId": org_id})
    status, body, _ = invoke("PutOrgLicense", event)
    assert status == 200, body
    licensed = orgs.get_org(org_id)
    assert licensed is not None and licensed.usage_key_shared is False
    assert licensed.usage_key_id != pooled.usage_key_id and plans.plans_of(licensed.usage_key_id) == {"team"}
    assert plans.plans_of(pooled.usage_key_id) == {"free"}  # the shared key never moves
    assert authorize("RunnerAuthorizer", {"X-Runner-Token": runner_token})["usageIdentifierKey"] == licensed.usage_key
    # A runner registered with an enrollment token made before the license counts under the new key too.
    status, registered, _ = invoke(
        "RegisterRunner", {**load_event("RegisterRunner"), "body": json.dumps({"token": enroll["token"]})}
    )
    assert status == 201, registered
    policy = authorize("RunnerAuthorizer", {"X-Runner-Token": registered["token"]})
    assert policy["usageIdentifierKey"] == licensed.usage_key


def test_past_the_account_quota_a_new_tenant_shares_its_plans_key(
    plans: Plans, monkeypatch: pytest.MonkeyPatch
) -> None:
    pooled_org = unique_org()
    monkeypatch.setenv("TENANT_KEY_LIMIT", "0")
    get_settings.cache_clear()
    shared = tenants.provision_tenant(pooled_org)  # makes the plan's shared key
    monkeypatch.setenv("TENANT_KEY_LIMIT", "100")
    get_settings.cache_clear()

    def quota_reached(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "limit"}}, "CreateApiKey")

    monkeypatch.setattr(usage_keys.client(), "create_api_key", quota_reached)
    org = tenants.provision_tenant(unique_org())
    assert org.usage_key_id == shared.usage_key_id and org.usage_key_shared is True
    assert usage_keys.reserve_tenant_key(1)  # the place taken for the failed key was given back


def test_a_recorded_key_whose_response_was_lost_is_kept(plans: Plans) -> None:
    """Was: botocore's retry of the write recording the key failed its own condition, read as "another
    request won", and the tenant's recorded key was deleted (every request then answered 403)."""
    org_id = unique_org()
    orgs.ensure_org(org_id)
    with DynamoFaults.installed() as faults:
        faults.inject("UpdateItem", LostResponse(), when=lambda call: "usageKeyId" in json.dumps(call.body))
        org = tenants.provision_tenant(org_id)
    assert faults.injected == [("UpdateItem", "LostResponse")]
    assert [key["id"] for key in plans.tenant_keys(org_id)] == [org.usage_key_id]
    assert plans.plans_of(org.usage_key_id) == {"free"}


def test_concurrent_first_requests_past_the_limit_share_one_key(
    serial_backend: Plans, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANT_KEY_LIMIT", "0")
    get_settings.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: tenants.provision_tenant(unique_org()), range(8)))
    assert len({result.usage_key_id for result in results}) == 1
    assert serial_backend.keys_in("free") == {results[0].usage_key_id}
