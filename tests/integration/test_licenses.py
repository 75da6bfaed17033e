"""GET /v1/license and the operator's PUT /v1/orgs/{orgId}/license, in-process against moto."""

from __future__ import annotations

from typing import Any

import pytest
from hangar.store import orgs
from hangar.store.transactions import TransactionCancelled, transact
from hangar.tenancy import usage_plans
from seed_shapes import SEED_LICENSE_KEYS
from support import ALL_BUT_OPERATOR, AwsStack, invoke, load_event, unique_org, user_event

LICENSE_KEYS = SEED_LICENSE_KEYS | {"orgId", "usage"}


def put(org: str, body: Any, scopes: str = "admin:licenses") -> tuple[int, Any]:
    status, response, _ = invoke(
        "PutOrgLicense",
        user_event("PutOrgLicense", "operators", scopes=scopes, body=body, path_params={"orgId": org}),
    )
    return status, response


def get(org: str, scopes: str = "runners:read") -> tuple[int, Any]:
    status, response, _ = invoke("GetLicense", user_event("GetLicense", org, scopes=scopes))
    return status, response


def test_new_tenant_reads_the_default_plan_with_any_read_scope(aws: AwsStack) -> None:
    org = unique_org()
    for scopes in ("runners:read", "jobs:read", "targets:read"):
        status, body = get(org, scopes)
        assert status == 200, body
        assert set(body) == LICENSE_KEYS
        assert body["plan"] == "free" and body["licenseState"] == "active" and body["orgId"] == org
        assert (body["runnerLimit"], body["concurrentJobLimit"], body["targetLimit"]) == (1, 1, 3)
        assert body["allowedTargetVisibilities"] == ["public"]
        assert body["usage"] == {"runners": 0, "activeJobs": 0, "targets": 0}
        assert body["canRegisterRunner"] is True and body["canStartSelfHostedScan"] is True
    assert orgs.get_org(org) is None  # reading never writes


def test_get_license_without_a_read_scope_is_403(aws: AwsStack) -> None:
    status, body = get(unique_org(), "keys:manage runners:manage")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"


def test_put_requires_the_operator_scope_and_nothing_else_will_do(aws: AwsStack) -> None:
    org = unique_org()
    status, body = put(org, {"plan": "team"}, scopes=ALL_BUT_OPERATOR)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    # Not even for one's own org.
    status, body, _ = invoke(
        "PutOrgLicense",
        user_event("PutOrgLicense", org, scopes=ALL_BUT_OPERATOR, body={"plan": "team"}, path_params={"orgId": org}),
    )
    assert status == 403
    assert get(org)[1]["plan"] == "free"


def test_put_creates_an_unseen_org_and_the_tenant_sees_it(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[tuple[str, str]] = []
    monkeypatch.setattr(usage_plans, "move_tenant_to_plan", lambda org, plan: moved.append((org.org_id, plan)))
    org = unique_org()
    assert orgs.get_org(org) is None
    status, body = put(org, {"plan": "team"})
    assert status == 200, body
    assert set(body) == LICENSE_KEYS and body["orgId"] == org and body["plan"] == "team"
    assert (body["runnerLimit"], body["concurrentJobLimit"], body["targetLimit"]) == (10, 10, 25)
    stored = orgs.get_org(org)
    assert stored is not None and stored.plan == "team"
    assert (stored.runner_count, stored.active_jobs, stored.target_count) == (0, 0, 0)
    assert (stored.runner_limit, stored.concurrent_job_limit) == (10, 10)  # materialized
    assert get(org)[1] == body
    assert moved == [(org, "team")]


def test_overrides_are_partial_and_null_clears_them(aws: AwsStack) -> None:
    org = unique_org()
    put(org, {"plan": "team"})
    status, body = put(org, {"runnerLimit": 3, "targetLimit": 0, "allowedTargetVisibilities": ["public", "public"]})
    assert status == 200, body
    assert body["plan"] == "team" and body["runnerLimit"] == 3 and body["targetLimit"] == 0
    assert body["concurrentJobLimit"] == 10 and body["allowedTargetVisibilities"] == ["public"]
    stored = orgs.get_org(org)
    assert stored is not None and stored.runner_limit == 3
    assert stored.overrides == {"runnerLimit": 3, "targetLimit": 0, "allowedTargetVisibilities": ["public"]}
    # A plan change keeps the overrides; null hands a limit back to the plan.
    status, body = put(org, {"plan": "enterprise", "runnerLimit": None})
    assert status == 200, body
    assert body["plan"] == "enterprise" and body["runnerLimit"] == 100 and body["targetLimit"] == 0
    stored = orgs.get_org(org)
    assert stored is not None and stored.runner_limit == 100 and "runnerLimit" not in stored.overrides


def test_expired_or_suspended_license_blocks_runners_and_targets(aws: AwsStack) -> None:
    org = unique_org()
    for state in ("expired", "suspended"):
        status, body = put(org, {"licenseState": state})
        assert status == 200 and body["licenseState"] == state
        assert body["canRegisterRunner"] is False and body["canStartSelfHostedScan"] is False
        status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r"}))
        assert status == 403 and body["error"]["code"] == "license_inactive"
        status, body, _ = invoke(
            "CreateTarget",
            user_event("CreateTarget", org, body={"name": "t", "url": "https://a.example", "visibility": "public"}),
        )
        assert status == 403 and body["error"]["code"] == "license_inactive"
    put(org, {"licenseState": "active"})
    status, _, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "r"}))
    assert status == 201


def test_usage_counts_what_the_tenant_has(aws: AwsStack) -> None:
    org = unique_org()
    put(org, {"plan": "team"})
    for name in ("a", "b"):
        status, _, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": name}))
        assert status == 201
    status, _, _ = invoke(
        "CreateTarget",
        user_event("CreateTarget", org, body={"name": "t", "url": "https://a.example", "visibility": "localhost"}),
    )
    assert status == 201
    assert get(org)[1]["usage"] == {"runners": 2, "activeJobs": 0, "targets": 1}
    status, body = put(org, {"runnerLimit": 2})
    assert body["canRegisterRunner"] is False and body["canStartSelfHostedScan"] is True  # at, not over


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ("{not json", "body"),
        ([1], "body"),
        ({"plan": "gold"}, "plan"),
        ({"plan": None}, "plan"),
        ({"licenseState": "paused"}, "licenseState"),
        ({"licenseState": None}, "licenseState"),
        ({"runnerLimit": -1}, "runnerLimit"),
        ({"runnerLimit": 10**9}, "runnerLimit"),
        ({"runnerLimit": "5"}, "runnerLimit"),
        ({"concurrentJobLimit": 1.5}, "concurrentJobLimit"),
        ({"targetLimit": True}, "targetLimit"),
        ({"allowedTargetVisibilities": ["secret"]}, "allowedTargetVisibilities.0"),
        ({"allowedTargetVisibilities": "public"}, "allowedTargetVisibilities"),
        ({"plan": "team", "colour": "red"}, "colour"),
    ],
)
def test_bad_license_input_names_the_field(aws: AwsStack, body: Any, field: str) -> None:
    status, response = put(unique_org(), body)
    assert status == 400, response
    assert response["error"]["field"] == field


def test_bad_org_id_is_400(aws: AwsStack) -> None:
    status, body = put("bad org!", {"plan": "team"})
    assert status == 400 and body["error"]["field"] == "orgId"


def test_stale_license_version_is_refused_by_the_store(aws: AwsStack) -> None:
    org = unique_org()
    put(org, {"plan": "team"})
    fields = {"plan": "free", "licenseState": "active", "overrides": {}, "runnerLimit": 1, "concurrentJobLimit": 1}
    for stale in (None, 7):  # it is at version 1 now
        with pytest.raises(TransactionCancelled) as refused:
            transact({"org": orgs.put_license_op(org, fields, stale, "2026-12-01T00:00:00.000Z")})
        assert refused.value["org"].condition_failed
    transact({"org": orgs.put_license_op(org, fields, 1, "2026-12-01T00:00:00.000Z")})
    stored = orgs.get_org(org)
    assert stored is not None and stored.plan == "free" and stored.license_version == 2


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    status, body, _ = invoke("PutOrgLicense", load_event("PutOrgLicense"))
    assert status == 200 and body["plan"] == "team", body
    status, body, _ = invoke("GetLicense", load_event("GetLicense"))
    assert status == 200 and body["plan"] == "team", body
