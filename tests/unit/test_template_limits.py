"""template.yaml's rate limits: every method needs a usage key, one usage plan per license plan (and
one for public traffic) with throttle, quota and runner-route throttles, WAF rules with the numbers
docs/limits.md states, least-privilege API Gateway permissions, and no dependency cycle."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hangar.core.plans import PLANS
from hangar.fleet import runner_tokens
from hangar.tenancy import limits
from support import ROOT, template

from local.limits import RequestInfo, statement_matches, usage_plans, waf_rules
from local.template import api_settings, function_properties, gateway_responses, resources, routes

TEMPLATE = template()
RESOURCES = TEMPLATE["Resources"]
ROUTES = routes(TEMPLATE)
USAGE_PLANS = resources(TEMPLATE, "AWS::ApiGateway::UsagePlan")
RUNNER_ROUTES = {
    ("POST", "/api/runners/heartbeat"),
    ("POST", "/api/runners/jobs"),
    ("POST", "/api/runners/jobs/status"),
    ("POST", "/api/runners/jobs/logs"),
    ("POST", "/api/runners/jobs/artifacts"),
}
# The per-runner WAF rule also counts the runner's own read (`hangar-agent status`), which no seed throttles.
WAF_RUNNER_ROUTES = RUNNER_ROUTES | {("GET", "/api/runners/me")}
LIMITS_DOC = (ROOT / "docs" / "limits.md").read_text()


def _plan_named(plan: str) -> dict[str, Any]:
    wanted = {"Fn::Sub": "${AWS::StackName}-" + plan}
    matches = [r for r in USAGE_PLANS.values() if r["Properties"]["UsagePlanName"] == wanted]
    assert len(matches) == 1, f"one usage plan named ${{AWS::StackName}}-{plan}"
    return matches[0]["Properties"]


def _doc_row(first_cell: str) -> list[str]:
    for line in LIMITS_DOC.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith(first_cell):
            return cells
    raise AssertionError(f"docs/limits.md has no table row for {first_cell!r}")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


# -- API keys on every method ------------------------------------------------------------------------


def test_the_api_takes_keys_from_the_authorizers() -> None:
    api = api_settings(TEMPLATE)
    assert api.api_key_source == "AUTHORIZER"
    assert api.api_key_required is True


def test_every_route_requires_an_api_key_and_has_an_authorizer() -> None:
    assert ROUTES
    for route in ROUTES:
        assert route.api_key_required, f"{route.method} {route.path} does not require an API key"
        assert route.authorizer, f"{route.method} {route.path} has no authorizer to return a usage key"
    for logical_id in resources(TEMPLATE, "AWS::Serverless::Function"):
        for event in (function_properties(TEMPLATE, logical_id).get("Events") or {}).values():
            if event.get("Type") == "Api":
                assert (event["Properties"].get("Auth") or {}).get("ApiKeyRequired", True) is True


# -- usage plans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [*PLANS, "public"])
def test_each_plan_has_a_usage_plan_with_throttle_and_quota_on_the_api_stage(plan: str) -> None:
    properties = _plan_named(plan)
    throttle = properties["Throttle"]
    assert throttle["RateLimit"] > 0 and throttle["BurstLimit"] >= throttle["RateLimit"]
    assert properties["Quota"]["Limit"] > 0 and properties["Quota"]["Period"] == "MONTH"
    assert properties["ApiStages"] == [
        {"ApiId": {"Ref": "HangarApi"}, "Stage": {"Ref": "HangarApi.Stage"}, **properties["ApiStages"][0]}
    ]
    row = _doc_row(plan)
    assert _number(row[1]) == throttle["RateLimit"] and _number(row[2]) == throttle["BurstLimit"]
    assert _number(row[3]) == properties["Quota"]["Limit"]


@pytest.mark.parametrize("plan", list(PLANS))
def test_runner_routes_have_method_throttles_of_runner_limit_times_two(plan: str) -> None:
    method_throttles = _plan_named(plan)["ApiStages"][0]["Throttle"]
    expected_rate = PLANS[plan].runnerLimit * 2  # 120/min for each runner the plan allows
    assert {key.rsplit("/", 1)[0] for key in method_throttles} == {path for _, path in RUNNER_ROUTES}
    for key, settings in method_throttles.items():
        path, method = key.rsplit("/", 1)
        assert (method, path) in RUNNER_ROUTES
        assert settings["RateLimit"] == expected_rate
        assert settings["BurstLimit"] == expected_rate * 10
    rate, burst = (part.strip() for part in _doc_row(plan)[4].split("/"))
    assert (_number(rate), _number(burst)) == (expected_rate, expected_rate * 10)


def test_method_throttle_keys_name_real_routes() -> None:
    known = {f"{route.path}/{route.method}" for route in ROUTES}
    for properties in (r["Properties"] for r in USAGE_PLANS.values()):
        for stage in properties["ApiStages"]:
            for key in stage.get("Throttle") or {}:
                assert key in known, f"{key} is not a route"


def test_local_reads_the_same_plans() -> None:
    specs = usage_plans(TEMPLATE)
    assert set(specs) == set(USAGE_PLANS)
    free = specs["FreeUsagePlan"]
    assert free.name == "hangar-local-free"
    assert free.throttle is not None and (free.throttle.rate, free.throttle.burst) == (50, 100)
    assert free.method_throttles["/api/runners/heartbeat/POST"].rate == 2
    assert (free.quota_limit, free.quota_period) == (1_000_000, "MONTH")


def test_functions_find_plans_by_name_and_reference_no_plan() -> None:
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["USAGE_PLAN_NAME_PREFIX"] == {"Fn::Sub": "${AWS::StackName}-"}
    assert "USAGE_PLAN_IDS" not in env  # a plan id in a function closes a cycle (plan -> stage -> API -> function)
    plan_ids = set(USAGE_PLANS)
    for logical_id in resources(TEMPLATE, "AWS::Serverless::Function"):
        text = json.dumps(RESOURCES[logical_id]["Properties"])
        for plan_id in plan_ids:
            assert plan_id not in text, f"{logical_id} references {plan_id}"


def test_public_traffic_has_its_own_key_in_the_public_plan() -> None:
    key = RESOURCES["PublicApiKey"]
    assert key["Type"] == "AWS::ApiGateway::ApiKey" and key["Properties"]["Enabled"] is True
    attachments = [r["Properties"] for r in resources(TEMPLATE, "AWS::ApiGateway::UsagePlanKey").values()]
    assert {"KeyId": {"Ref": "PublicApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "PublicUsagePlan"}} in (
        attachments
    )
    public = RESOURCES["PublicAuthorizerFunction"]["Properties"]
    assert public["Environment"]["Variables"]["PUBLIC_USAGE_KEY_ID"] == {"Ref": "PublicApiKey"}


# -- gateway responses -------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["THROTTLED", "QUOTA_EXCEEDED"])
def test_usage_plan_refusals_are_429_with_retry_after_and_rate_limited(response_type: str) -> None:
    spec = gateway_responses(TEMPLATE)[response_type]
    assert spec.status == 429
    assert int(spec.headers["Retry-After"]) >= 1
    assert json.loads(spec.templates["application/json"])["error"]["code"] == "rate_limited"


def test_a_missing_usage_key_is_403() -> None:
    spec = gateway_responses(TEMPLATE)["INVALID_API_KEY"]
    assert spec.status == 403
    assert json.loads(spec.templates["application/json"])["error"]["code"] == "forbidden"


# -- WAF ---------------------------------------------------------------------------------------------


def _request(method: str, path: str) -> RequestInfo:
    return RequestInfo(method=method, path=path, headers={}, query={}, source_ip="203.0.113.9", now=0.0)


def _sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc123", path)


def test_the_web_acl_is_regional_and_protects_the_api_stage() -> None:
    acl = RESOURCES["ApiWebAcl"]
    assert acl["Type"] == "AWS::WAFv2::WebACL"
    assert acl["Properties"]["Scope"] == "REGIONAL" and acl["Properties"]["DefaultAction"] == {"Allow": {}}
    # Sampled requests would keep request headers (runner and bearer tokens) readable in the console.
    assert acl["Properties"]["VisibilityConfig"]["SampledRequestsEnabled"] is False
    assert all(rule["VisibilityConfig"]["SampledRequestsEnabled"] is False for rule in acl["Properties"]["Rules"])
    association = RESOURCES["ApiWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert "/restapis/${HangarApi}/stages/${HangarApi.Stage}" in association["ResourceArn"]["Fn::Sub"]


def test_runner_routes_are_limited_per_runner_token() -> None:
    rule = next(r for r in waf_rules(TEMPLATE) if r.name == "runner-routes-per-runner")
    assert (rule.rate_limit, rule.rate_window_seconds, rule.action) == (120, 60, "Block")
    assert [key["Header"]["Name"].lower() for key in rule.aggregation] == ["x-runner-token"]
    in_scope = {
        (route.method, route.path)
        for route in ROUTES
        if statement_matches(rule.statement, _request(route.method, _sample_path(route.path)))
    }
    assert in_scope == WAF_RUNNER_ROUTES
    # In AWS the path seen by WAF carries the stage (execute-api URL) or not (custom domain): both match.
    assert statement_matches(rule.statement, _request("POST", "/prod/api/runners/heartbeat"))
    assert _doc_row("`runner-routes-per-runner`")[1].startswith("120 requests / 60 s")


def test_register_is_limited_per_source_ip() -> None:
    rule = next(r for r in waf_rules(TEMPLATE) if r.name == "register-per-ip")
    assert (rule.rate_limit, rule.rate_window_seconds, rule.action) == (30, 60, "Block")
    assert rule.aggregation == ({"IP": {}},)
    in_scope = {
        (route.method, route.path)
        for route in ROUTES
        if statement_matches(rule.statement, _request(route.method, _sample_path(route.path)))
    }
    assert in_scope == {("POST", "/v1/runners/register")}
    assert _doc_row("`register-per-ip`")[1].startswith("30 requests / 60 s")


@pytest.mark.parametrize(("rule_name", "dialect"), [("runner-routes-per-runner", "api"), ("register-per-ip", "v1")])
def test_waf_blocks_answer_429_with_retry_after_in_the_routes_dialect(rule_name: str, dialect: str) -> None:
    rule = next(r for r in waf_rules(TEMPLATE) if r.name == rule_name)
    assert rule.refusal is not None and rule.refusal.status == 429
    assert int(rule.refusal.headers["Retry-After"]) == rule.rate_window_seconds
    body = json.loads(rule.refusal.body or "")
    assert body["error"]["code"] == "rate_limited"
    assert str(rule.rate_limit) in body["error"]["message"]
    assert ("success" in body) == (dialect == "api")
    if dialect == "api":
        assert body["success"] is False


# -- DynamoDB-counted limits -------------------------------------------------------------------------


def test_counted_limits_are_defined_once_and_documented() -> None:
    assert limits.REGENERATIONS_PER_HOUR == 5
    # runner_tokens may still carry its own copy of the number; it must agree.
    assert getattr(runner_tokens, "REGENERATIONS_PER_WINDOW", 5) == limits.REGENERATIONS_PER_HOUR
    assert getattr(runner_tokens, "REGENERATION_WINDOW_SECONDS", limits.HOUR) == limits.HOUR
    assert _doc_row("`POST /api/runners/{runnerId}/regenerate-token`")[1] == "5 / hour"
    assert _doc_row("`POST /v1/runners/enrollment-tokens`")[1] == f"{limits.ENROLLMENT_TOKENS_PER_HOUR} / hour"
    assert _doc_row("`POST /v1/api-keys`")[1] == f"{limits.API_KEYS_PER_HOUR} / hour"


# -- permissions -------------------------------------------------------------------------------------


def _apigateway_statements(logical_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in RESOURCES[logical_id]["Properties"].get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(s for s in policy["Statement"] if any("apigateway" in a for a in s["Action"]))
    return found


def _resource_paths(statement: dict[str, Any]) -> set[str]:
    resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return {r["Fn::Sub"].rsplit("::", 1)[1] for r in resources_}


def test_authorizers_get_only_the_api_gateway_calls_they_make() -> None:
    user = {tuple(s["Action"]): _resource_paths(s) for s in _apigateway_statements("UserAuthorizerFunction")}
    assert user == {
        ("apigateway:POST",): {"/apikeys", "/usageplans/*/keys"},
        ("apigateway:DELETE",): {"/apikeys/*", "/usageplans/*/keys/*"},
        ("apigateway:GET",): {"/usageplans"},
    }
    public = {tuple(s["Action"]): _resource_paths(s) for s in _apigateway_statements("PublicAuthorizerFunction")}
    assert public == {("apigateway:GET",): {"/apikeys/${PublicApiKey}"}}
    assert _apigateway_statements("RunnerAuthorizerFunction") == []
    # A license write moves the tenant's key, or gives a tenant on a shared key its own (and drops it
    # again when a concurrent write won).
    license_ = {tuple(s["Action"]): _resource_paths(s) for s in _apigateway_statements("PutOrgLicenseFunction")}
    assert license_ == {
        ("apigateway:GET",): {"/usageplans"},
        ("apigateway:POST",): {"/apikeys", "/usageplans/*/keys"},
        ("apigateway:DELETE",): {"/apikeys/*", "/usageplans/*/keys/*"},
    }


# -- the generated template ----------------------------------------------------------------------------


# `translated` (the template through the SAM translator) comes from tests/unit/conftest.py.


def test_every_generated_method_requires_an_api_key(translated: dict[str, Any]) -> None:
    api = translated["Resources"]["HangarApi"]["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    body = api["Body"]
    assert body["securityDefinitions"]["api_key"]["in"] == "header"
    methods = [(method, path, op) for path, ops in body["paths"].items() for method, op in ops.items()]
    # The CORS preflights (SAM's OPTIONS mock on each path) carry no credential: no Lambda, no key.
    preflights = [(path, op) for method, path, op in methods if method == "options"]
    assert {path for path, _ in preflights} == set(body["paths"])
    assert all(op["x-amazon-apigateway-integration"]["type"] == "mock" for _, op in preflights)
    methods = [(method, path, op) for method, path, op in methods if method != "options"]
    assert len(methods) == len(ROUTES)
    for method, path, op in methods:
        assert {"api_key": []} in op.get("security", []), f"{method.upper()} {path} does not require an API key"


def test_the_generated_template_has_no_dependency_cycle(translated: dict[str, Any]) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(ROOT / ".venv" / "bin")))
    if cfn_lint is None:
        pytest.skip("cfn-lint is not installed")
    result = subprocess.run(
        [cfn_lint, "--format", "parseable", translated["__path__"]], capture_output=True, text=True, check=False
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert errors == [], "\n".join(errors)
