"""template.yaml is the single source of truth: check what the stack promises, and that code and fixtures match it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import EVENTS, ROOT, template

from local.template import functions, resources, routes

TEMPLATE = template()
FUNCTIONS = resources(TEMPLATE, "AWS::Serverless::Function")
TABLES = resources(TEMPLATE, "AWS::DynamoDB::Table")


def test_globals_runtime_architecture_tracing() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    layer = TEMPLATE["Resources"]["HangarLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_tables_on_demand_pitr_encrypted(logical_id: str) -> None:
    properties = TABLES[logical_id]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_code_a_log_group_with_retention_and_an_event(logical_id: str) -> None:
    spec = functions(TEMPLATE, ROOT)[logical_id]
    assert spec.module_file.is_file(), f"{spec.module_file} missing"
    log_group_ref = FUNCTIONS[logical_id]["Properties"]["LoggingConfig"]["LogGroup"]
    log_group = TEMPLATE["Resources"][log_group_ref["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"]
    name = logical_id.removesuffix("Function")
    assert (EVENTS / f"{name}.json").is_file(), f"events/{name}.json missing"


def _policies(logical_id: str) -> list[Any]:
    return list(FUNCTIONS[logical_id]["Properties"].get("Policies") or [])


def test_events_match_their_routes() -> None:
    for route in routes(TEMPLATE):
        event = json.loads((EVENTS / f"{route.function_id.removesuffix('Function')}.json").read_text())
        assert event["resource"] == route.path
        assert event["httpMethod"] == route.method.upper()


def test_read_routes_get_read_only_table_access() -> None:
    for route in routes(TEMPLATE):
        if route.method.lower() != "get":
            continue
        for policy in _policies(route.function_id):
            assert isinstance(policy, dict)
            assert "DynamoDBCrudPolicy" not in policy and "DynamoDBWritePolicy" not in policy, route


def test_outputs_name_the_api_and_tables() -> None:
    outputs = TEMPLATE["Outputs"]
    assert "ApiUrl" in outputs
    for logical_id in TABLES:
        assert any(output["Value"] == {"Ref": logical_id} for output in outputs.values()), logical_id


def test_sam_local_env_file_names_every_table_the_functions_read() -> None:
    """samconfig.toml's sam-local env file must point the functions at the local table names."""
    from local.template import local_table_name

    env = json.loads((ROOT / "local" / "sam-env.json").read_text())["Parameters"]
    for variable, value in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and value.get("Ref") in TABLES:
            assert env[variable] == local_table_name(value["Ref"]), variable


# A clone has no design document or seed files: comments say the rule, or name the docs/ file that holds it.
OUTSIDE_REFERENCES = re.compile(r"\.\./shared|shared/seeds|\bDESIGN\b|\bseed 00\d", re.IGNORECASE)
CODE_THAT_CITES_THE_CONTRACT = [ROOT / "template.yaml", *sorted((ROOT / "functions").rglob("*.py"))]


@pytest.mark.parametrize("path", CODE_THAT_CITES_THE_CONTRACT, ids=lambda path: str(path.relative_to(ROOT)))
def test_comments_cite_nothing_outside_the_repository(path: Path) -> None:
    lines = [line.strip() for line in path.read_text().splitlines() if OUTSIDE_REFERENCES.search(line)]
    assert not lines, f"{path.relative_to(ROOT)} cites what a clone does not have: {lines}"
