"""Every function runs with its events/ fixture as shipped (what `sam local invoke -e` would send)."""

from __future__ import annotations

import pytest
from support import AwsStack, FakeLambdaContext, handler_module, invoke, is_refusal, load_event, template

from local.template import routes

API_FUNCTIONS = sorted(route.function_id.removesuffix("Function") for route in routes(template()))
# Fixtures name ids that do not exist in an empty table: those routes answer 404 (or the runner
# routes 401, as the fixture's runner does not exist), never a 5xx.
EXPECTED_WITHOUT_DATA = {200, 201, 401, 404}


@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_api_fixture_is_a_valid_request(aws: AwsStack, name: str) -> None:
    status, body, _ = invoke(name, load_event(name))
    assert status in EXPECTED_WITHOUT_DATA, (name, status, body)


@pytest.mark.parametrize("name", ["UserAuthorizer", "RunnerAuthorizer"])
def test_authorizer_fixtures_carry_placeholder_credentials_and_are_refused(aws: AwsStack, name: str) -> None:
    assert is_refusal(handler_module(name).handler(load_event(name), FakeLambdaContext()))


def test_public_authorizer_fixture_is_allowed(aws: AwsStack) -> None:
    policy = handler_module("PublicAuthorizer").handler(load_event("PublicAuthorizer"), FakeLambdaContext())
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_sweeper_fixture_runs_a_sweep(aws: AwsStack) -> None:
    summary = handler_module("Sweeper").handler(load_event("Sweeper"), FakeLambdaContext())
    assert summary["errors"] == 0 and summary["itemsRead"] == 0
