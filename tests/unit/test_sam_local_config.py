"""What `sam local` reads besides the code: local/sam-env.json, samconfig.toml, the template's declarations,
the authorizers' refusal, and the tools behind `make build` and `make sam-local`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from support import ROOT, template

from local.template import load_template
from tools.sam_local import DEFAULT_BACKEND_PORT, env_vars_for_port, sam_environment, x86_64_template

SAM_ENV = json.loads((ROOT / "local" / "sam-env.json").read_text())["Parameters"]
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def _functions(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in stack["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _environment(stack: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    """A function's variables as SAM sees them: Globals, then its own."""
    variables = dict(stack["Globals"]["Function"]["Environment"]["Variables"])
    variables.update(((function["Properties"].get("Environment") or {}).get("Variables")) or {})
    return variables


def test_every_variable_of_the_env_file_is_declared_by_the_template() -> None:
    """SAM hands --env-vars only to variables a function declares; anything else is silently dropped."""
    stack = template()
    declared = set().union(*(_environment(stack, function) for function in _functions(stack).values()))
    assert sorted(set(SAM_ENV) - declared) == []


def test_every_function_takes_the_local_endpoint_and_pepper_and_aws_gets_empty_ones() -> None:
    stack = template()
    for logical_id, function in _functions(stack).items():
        variables = _environment(stack, function)
        assert variables.get("AWS_ENDPOINT_URL") == "", logical_id  # botocore ignores an empty one
        assert variables.get("TOKEN_PEPPER") == "", logical_id  # empty: the pepper secret
    assert SAM_ENV["AWS_ENDPOINT_URL"] == f"http://host.docker.internal:{DEFAULT_BACKEND_PORT}"
    assert SAM_ENV["TOKEN_PEPPER"]


def test_the_env_file_sets_every_variable_sam_cannot_resolve_locally() -> None:
    """A Ref to a resource (table, key, secret), a Sub or a GetAtt means nothing without a stack; a Ref to
    a parameter comes from samconfig.toml's parameter_overrides or the parameter's default."""
    stack = template()
    parameters = set(stack["Parameters"])
    for logical_id, function in _functions(stack).items():
        for name, value in _environment(stack, function).items():
            if isinstance(value, dict) and not (set(value) == {"Ref"} and value["Ref"] in parameters):
                assert name in SAM_ENV, f"{logical_id}: {name} = {value}"


def test_the_env_file_names_no_aws_credentials_sam_would_drop() -> None:
    """Lambda reserves these names (a template cannot declare them): SAM takes them from its own shell."""
    assert not {name for name in SAM_ENV if name.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_DEF"))}


def test_samconfig_local_commands_use_the_env_file_and_reach_the_host_on_linux() -> None:
    for command in ("local_start_api", "local_invoke"):
        settings = SAMCONFIG["default"][command]["parameters"]
        assert settings["env_vars"] == "local/sam-env.json", command
        assert settings["add_host"] == ["host.docker.internal:host-gateway"], command
        assert "JwtAlgorithms=HS256" in settings["parameter_overrides"], command


def test_refusals_answer_as_unauthorized_does_in_api_gateway() -> None:
    """The authorizers refuse with a Deny (ACCESS_DENIED): API Gateway must still answer the 401 body."""
    responses = template()["Resources"]["HangarApi"]["Properties"]["GatewayResponses"]
    assert responses["ACCESS_DENIED"] == responses["UNAUTHORIZED"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"


def test_sam_gets_dummy_credentials_and_none_of_the_shells_aws_identity() -> None:
    shell = {
        "AWS_PROFILE": "prod",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "AWS_SESSION_TOKEN": "real",
        "AWS_ENDPOINT_URL": "https://elsewhere",
        "PATH": "/usr/bin",
    }
    env = sam_environment(shell)
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["PATH"] == "/usr/bin"
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN"} & set(env)
    assert env.get("AWS_ENDPOINT_URL", "") == ""


def test_env_vars_for_another_backend_port_change_only_the_endpoint() -> None:
    document = env_vars_for_port(18000)
    assert document["Parameters"] == {**SAM_ENV, "AWS_ENDPOINT_URL": "http://host.docker.internal:18000"}


def test_x86_64_copy_of_the_template_changes_architectures_and_code_paths_only(tmp_path: Path) -> None:
    copy = tmp_path / "template-x86_64.yaml"
    copy.write_text(x86_64_template((ROOT / "template.yaml").read_text()))
    original, x86 = template(), load_template(copy)
    assert x86["Globals"]["Function"]["Architectures"] == ["x86_64"]
    layer = x86["Resources"]["HangarLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == "x86_64"
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    for logical_id, resource in x86["Resources"].items():
        code = resource.get("Properties", {}).get("CodeUri") or resource.get("Properties", {}).get("ContentUri")
        if isinstance(code, str):
            assert Path(code).is_absolute() and Path(code).is_dir(), logical_id
    assert set(x86["Resources"]) == set(original["Resources"])


COMPILE_SCRIPT = "import sys, tools.bytecode as b; sys.exit(0 if b.compile_tree(b.Path(sys.argv[1])) else 1)"


def test_build_bytecode_is_written_despite_pythondontwritebytecode_and_never_checks_sources(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    source = tmp_path / "package" / "module.py"
    source.write_text("VALUE = 1\n")
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    compiled = list((tmp_path / "package" / "__pycache__").glob("module.*.pyc"))
    assert len(compiled) == 1
    flags = int.from_bytes(compiled[0].read_bytes()[4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, source not checked (zip times cannot be trusted)
