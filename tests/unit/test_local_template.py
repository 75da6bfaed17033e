"""local/ reads only what template.yaml uses: the template itself loads, and each feature local/ does not
emulate stops it with NotSupportedLocally instead of being silently ignored."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from support import template

from local import limits, provision
from local.devtokens import sign_in
from local.template import (
    NotSupportedLocally,
    authorizers,
    event_sources,
    function_environment,
    functions,
    gateway_responses,
    routes,
    schedules,
    table_definitions,
)


def read_everything(data: dict[str, Any]) -> None:
    """What `make run` reads of a template at start-up."""
    provision.check_resource_types(data)
    functions(data)
    routes(data)
    authorizers(data)
    gateway_responses(data)
    schedules(data)
    event_sources(data)
    table_definitions(data)
    function_environment(data)
    limits.usage_plans(data)
    limits.waf_rules(data)


def test_the_template_is_fully_supported() -> None:
    read_everything(template())


def _api(data: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = data["Resources"]["HangarApi"]["Properties"]
    return properties


def _heartbeat_event(data: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = data["Resources"]["HeartbeatFunction"]["Properties"]["Events"]["Api"]
    return event


def _runner_changes(data: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = data["Resources"]["EventProcessorFunction"]["Properties"]["Events"]["RunnerChanges"]
    return properties["Properties"]  # type: ignore[no-any-return]


def _waf_rule(data: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = data["Resources"]["ApiWebAcl"]["Properties"]["Rules"][0]
    return rule


MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "TOKEN authorizer": lambda t: _api(t)["Auth"]["Authorizers"]["UserAuthorizer"].update(FunctionPayloadType="TOKEN"),
    "ValidationExpression": lambda t: _api(t)["Auth"]["Authorizers"]["RunnerTokenAuthorizer"]["Identity"].update(
        ValidationExpression="^hgr_"
    ),
    "stage variable identity": lambda t: _api(t)["Auth"]["Authorizers"]["RunnerTokenAuthorizer"]["Identity"].update(
        StageVariables=["x"]
    ),
    "CORS as a string": lambda t: _api(t).update(Cors="'*'"),
    "CORS with credentials": lambda t: _api(t)["Cors"].update(AllowCredentials=True),
    "CORS AllowMethods": lambda t: _api(t)["Cors"].update(AllowMethods="'GET'"),
    "Fn::Sub escape": lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(X={"Fn::Sub": "${!x}"}),
    "schedule State": lambda t: t["Resources"]["SweeperFunction"]["Properties"]["Events"]["Sweep"]["Properties"].update(
        State="DISABLED"
    ),
    "CORS origin from a mapping": lambda t: _api(t)["Cors"].update(AllowOrigin="method.request.header.Origin"),
    "CORS preflight behind the authorizer": lambda t: _api(t)["Auth"].update(AddDefaultAuthorizerToCorsPreflight=True),
    "BinaryMediaTypes": lambda t: _api(t).update(BinaryMediaTypes=["image~1png"]),
    "greedy route": lambda t: _heartbeat_event(t)["Properties"].update(Path="/files/{proxy+}"),
    "ANY route": lambda t: _heartbeat_event(t)["Properties"].update(Method="any"),
    "request parameters": lambda t: _heartbeat_event(t)["Properties"].update(RequestParameters=["x"]),
    "Fn::Join": lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(X={"Fn::Join": ["", ["a"]]}),
    "SSM parameter": lambda t: t["Resources"].update(P={"Type": "AWS::SSM::Parameter", "Properties": {}}),
    "KMS alias": lambda t: t["Resources"].update(A={"Type": "AWS::KMS::Alias", "Properties": {}}),
    "SimpleTable": lambda t: t["Resources"].update(S={"Type": "AWS::Serverless::SimpleTable"}),
    "local index": lambda t: t["Resources"]["RunnersTable"]["Properties"].update(LocalSecondaryIndexes=[]),
    "ScheduleV2": lambda t: t["Resources"]["SweeperFunction"]["Properties"]["Events"]["Sweep"].update(
        Type="ScheduleV2"
    ),
    "WAF AndStatement": lambda t: _waf_rule(t)["Statement"]["RateBasedStatement"].update(
        ScopeDownStatement={"AndStatement": {"Statements": []}}
    ),
    "WAF text transformation": lambda t: _waf_rule(t)["Statement"]["RateBasedStatement"]["CustomKeys"][0]["Header"][
        "TextTransformations"
    ][0].update(Type="LOWERCASE"),
    "WAF match rule": lambda t: _waf_rule(t).update(Statement={"ByteMatchStatement": {}}),
    "stream filter matcher": lambda t: _runner_changes(t)["FilterCriteria"]["Filters"][0].update(
        Pattern='{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 0]}]}}}}'
    ),
    "gateway response header mapping": lambda t: _api(t)["GatewayResponses"]["THROTTLED"]["ResponseParameters"][
        "Headers"
    ].update(X="method.request.header.X"),
}


# What each error names: (the feature, the resource), as "not supported by local/: <feature> (<resource>)".
NAMED: dict[str, tuple[str, str]] = {
    "TOKEN authorizer": ("a TOKEN authorizer", "authorizer UserAuthorizer"),
    "ValidationExpression": ("the identity source ValidationExpression", "authorizer RunnerTokenAuthorizer"),
    "stage variable identity": ("the identity source StageVariables", "authorizer RunnerTokenAuthorizer"),
    "CORS as a string": ("Cors as a string", "HangarApi"),
    "CORS with credentials": ("the Cors property AllowCredentials", "HangarApi"),
    "CORS AllowMethods": ("the Cors property AllowMethods", "HangarApi"),
    "Fn::Sub escape": ("the Fn::Sub escape ${!...}", "Environment.X"),
    "schedule State": ("the Schedule event property State", "SweeperFunction.Sweep"),
    "CORS origin from a mapping": ("Cors.AllowOrigin from method.request.header.Origin", "HangarApi"),
    "CORS preflight behind the authorizer": ("Auth.AddDefaultAuthorizerToCorsPreflight", "HangarApi"),
    "BinaryMediaTypes": ("the API property BinaryMediaTypes", "HangarApi"),
    "greedy route": ("the greedy path /files/{proxy+}", "HeartbeatFunction.Api"),
    "ANY route": ("the method ANY", "HeartbeatFunction.Api"),
    "request parameters": ("the Api event property RequestParameters", "HeartbeatFunction.Api"),
    "Fn::Join": ("Fn::Join", "Environment.X"),
    "SSM parameter": ("the resource type AWS::SSM::Parameter", "P"),
    "KMS alias": ("the resource type AWS::KMS::Alias", "A"),
    "SimpleTable": ("the resource type AWS::Serverless::SimpleTable", "S"),
    "local index": ("the table property LocalSecondaryIndexes", "RunnersTable"),
    "ScheduleV2": ("the event type ScheduleV2", "SweeperFunction.Sweep"),
    "WAF AndStatement": ("the WAF statement AndStatement", "ApiWebAcl rule runner-routes-per-runner"),
    "WAF text transformation": ("the WAF text transformation LOWERCASE", "ApiWebAcl rule runner-routes-per-runner"),
    "WAF match rule": ("the WAF statement ByteMatchStatement", "ApiWebAcl rule runner-routes-per-runner"),
    "stream filter matcher": (
        'the filter pattern matcher {"numeric": [">", 0]}',
        "EventProcessorFunction.RunnerChanges",
    ),
    "gateway response header mapping": ("the header X from method.request.header.X", "gateway response THROTTLED"),
}


@pytest.mark.parametrize("feature", sorted(MUTATIONS))
def test_an_unsupported_feature_fails_loudly(feature: str) -> None:
    data = copy.deepcopy(template())
    MUTATIONS[feature](data)
    with pytest.raises(NotSupportedLocally, match=r"^not supported by local/: ") as raised:
        read_everything(data)
    named, resource = NAMED[feature]
    assert named in raised.value.feature
    assert raised.value.resource is not None and raised.value.resource.endswith(resource)
    assert f"({raised.value.resource})" in str(raised.value)


def test_every_unsupported_feature_says_what_it_names() -> None:
    assert set(NAMED) == set(MUTATIONS)


def test_the_dev_secret_unless_an_issuer_is_configured() -> None:
    dev = sign_in({})
    assert not dev.issuer_mode and dev.environment["JWT_ALGORITHMS"] == "HS256"
    issuer = sign_in({"HANGAR_JWT_JWKS_URL": "https://idp.example/jwks", "HANGAR_JWT_ISSUER": "https://idp.example/"})
    assert issuer.issuer_mode and "JWT_SECRET" not in issuer.environment
    assert (issuer.environment["JWT_ALGORITHMS"], issuer.environment["JWT_AUDIENCE"]) == ("RS256", "hangar")
    assert any("JWTs from https://idp.example/" in line for line in issuer.banner())


@pytest.mark.parametrize(
    "environ",
    [{"HANGAR_JWT_JWKS_URL": "https://idp.example/jwks"}, {"HANGAR_JWT_ISSUER": "https://idp.example/"}],
)
def test_a_partial_issuer_setting_is_a_startup_error(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="HANGAR_JWT_"):
        sign_in(environ)
