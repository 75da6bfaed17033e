"""Regenerate-token, setup-info and the install script (seed 000) in-process."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shlex
import subprocess
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import builders
import pytest
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Unauthorized
from hangar.identity import tokens
from hangar.identity.credentials import authenticate_runner
from hangar.tenancy import limits
from support import AwsStack, ensure_agent_wheel, invoke, runner_event, unique_org, user_event

# A linux runner named tok-runner unless a test says otherwise.
create_runner = partial(builders.create_runner, name="tok-runner", labels=["linux"])


def regenerate(org: str, runner_id: str, scopes: str | None = None) -> tuple[int, Any, dict[str, str]]:
    kwargs: dict[str, Any] = {"path_params": {"runnerId": runner_id}}
    if scopes is not None:
        kwargs["scopes"] = scopes
    return invoke("RegenerateRunnerToken", user_event("RegenerateRunnerToken", org, **kwargs))


def setup_info(org: str, runner_id: str, scopes: str | None = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"path_params": {"runnerId": runner_id}}
    if scopes is not None:
        kwargs["scopes"] = scopes
    status, body, _ = invoke("GetSetupInfo", user_event("GetSetupInfo", org, **kwargs))
    return status, body


def heartbeat(org: str, runner_id: str, token_version: int) -> int:
    status, _, _ = invoke(
        "Heartbeat", runner_event("Heartbeat", org, runner_id, token_version, body={"status": "online"})
    )
    return status


def install_event(org: str, runner_id: str, token: str | None, path_runner_id: str | None = None) -> dict[str, Any]:
    """GET /api/runners/{id}/setup?token= as the InstallTokenAuthorizer passes it on."""
    parsed = tokens.parse(token) if token else None
    principal, _ = authenticate_runner(token) if parsed else (None, None)
    event = copy.deepcopy(runner_event("GetInstallScript", org, runner_id, principal.token_version if principal else 1))
    event["requestContext"]["authorizer"]["tokenId"] = parsed.token_id if parsed else ""
    path_id = path_runner_id or runner_id
    event["pathParameters"] = {"runnerId": path_id}
    event["path"] = f"/api/runners/{path_id}/setup"
    event["queryStringParameters"] = {"token": token} if token else None
    event["multiValueQueryStringParameters"] = {"token": [token]} if token else None
    return event


def test_regenerate_invalidates_the_old_token_at_once(aws: AwsStack) -> None:
    org = unique_org()
    created = create_runner(org, labels=["linux", "gpu"])
    rid, old_token = created["_id"], created["token"]
    assert heartbeat(org, rid, 1) == 200

    status, body, _ = regenerate(org, rid)
    assert status == 200, body
    data = body["data"]
    assert set(data) == {"_id", "token", "tokenPrefix"} and data["_id"] == rid
    new = tokens.parse(data["token"], tokens.TokenType.RUNNER)
    assert new is not None and new.token_id == data["tokenPrefix"] != created["tokenPrefix"]
    assert data["token"] not in str(aws.scan_all())

    # The authorizer refuses the old token (its item is gone) and accepts the new one with version 2.
    with pytest.raises(Unauthorized):
        authenticate_runner(old_token)
    principal, _ = authenticate_runner(data["token"])
    assert principal.runner_id == rid and principal.token_version == 2 and principal.labels == ("linux", "gpu")
    # A cached Allow for the old token still says version 1: its writes fail the token guard.
    assert heartbeat(org, rid, 1) == 401
    assert heartbeat(org, rid, 2) == 200

    status, runner, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": rid}))
    assert status == 200 and runner["data"]["tokenPrefix"] == data["tokenPrefix"]
    kinds = [item for item in aws.scan_all() if item.get("runnerId", {}).get("S") == rid and "kind" in item]
    assert [item["tokenId"]["S"] for item in kinds] == [data["tokenPrefix"]]


def test_regenerate_is_limited_to_five_an_hour_per_runner(aws: AwsStack) -> None:
    org = unique_org()
    aws.dynamodb.update_item(
        TableName="OrgsTable",
        Key={"orgId": {"S": org}, "sk": {"S": "ORG"}},
        UpdateExpression="SET runnerLimit = :ten, licenseState = :active, runnerCount = :zero",
        ExpressionAttributeValues={":ten": {"N": "10"}, ":active": {"S": "active"}, ":zero": {"N": "0"}},
    )
    rid = create_runner(org)["_id"]
    other = create_runner(org, name="other")["_id"]
    for _ in range(5):
        status, body, _ = regenerate(org, rid)
        assert status == 200, body
    prefix_before = body["data"]["tokenPrefix"]

    status, body, headers = regenerate(org, rid)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert body["success"] is False
    retry_after = int(headers["Retry-After"])
    assert 0 < retry_after <= 3600
    # The refused request changed nothing: the last token is still the runner's.
    status, runner, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": rid}))
    assert runner["data"]["tokenPrefix"] == prefix_before

    # Another runner of the same tenant has its own budget.
    status, body, _ = regenerate(org, other)
    assert status == 200, body

    clock.advance(retry_after)
    status, body, _ = regenerate(org, rid)
    assert status == 200, body


def test_unknown_runner_is_404_and_uses_no_budget(aws: AwsStack) -> None:
    org = unique_org()
    for _ in range(7):
        status, body, _ = regenerate(org, "rnr_doesnotexist0000")
        assert status == 404 and body["error"]["code"] == "not_found"
    rate_items = [item for item in aws.scan_all() if item.get("sk", {}).get("S", "").startswith("RATE#")]
    assert rate_items == []


def test_other_tenant_gets_404_and_scopes_are_checked(aws: AwsStack) -> None:
    org = unique_org()
    rid = create_runner(org)["_id"]
    other = unique_org()
    status, body, _ = regenerate(other, rid)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = setup_info(other, rid)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = regenerate(org, rid, scopes="runners:read")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body = setup_info(org, rid, scopes="runners:read jobs:manage")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"


def test_setup_info_shows_the_token_until_the_first_heartbeat(aws: AwsStack) -> None:
    org = unique_org()
    created = create_runner(org)
    rid = created["_id"]
    status, body = setup_info(org, rid)
    assert status == 200, body
    info = body["data"]
    assert info["runnerId"] == rid and info["tokenPrefix"] == created["tokenPrefix"]
    assert info["token"] == created["token"]
    assert info["apiUrl"] == "https://api.example.com/prod"  # from the request (PUBLIC_API_URL unset)
    assert info["installCommand"] == (
        f"curl -fsSL 'https://api.example.com/prod/api/runners/{rid}/setup?token={created['token']}' | sh"
    )
    assert info["hint"] is None

    assert heartbeat(org, rid, 1) == 200
    status, body = setup_info(org, rid)
    info = body["data"]
    assert status == 200 and info["token"] is None and "regenerate" in info["hint"].lower()
    assert info["installCommand"] == (
        f'curl -fsSL "https://api.example.com/prod/api/runners/{rid}/setup?token=$HANGAR_RUNNER_TOKEN" | sh'
    )
    assert created["token"] not in str(body)

    # A regenerated token is shown again until the runner uses it.
    status, regenerated, _ = regenerate(org, rid)
    status, body = setup_info(org, rid)
    assert body["data"]["token"] == regenerated["data"]["token"]
    assert body["data"]["tokenPrefix"] == regenerated["data"]["tokenPrefix"]


def test_setup_info_uses_the_configured_public_url(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_API_URL", "https://hangar.example.com/")
    get_settings.cache_clear()
    try:
        org = unique_org()
        rid = create_runner(org)["_id"]
        status, body = setup_info(org, rid)
        assert status == 200 and body["data"]["apiUrl"] == "https://hangar.example.com"
        assert body["data"]["installCommand"].startswith("curl -fsSL 'https://hangar.example.com/api/runners/")
    finally:
        monkeypatch.delenv("PUBLIC_API_URL")
        get_settings.cache_clear()


NASTY_NAME = 'it\'s $(touch pwned) `id` "quoted" ; rm -rf ~ # ünïcode'


def test_install_script_is_a_quoted_shell_script(aws: AwsStack, tmp_path: Any) -> None:
    wheel = ensure_agent_wheel()
    org = unique_org()
    created = create_runner(org, name=NASTY_NAME, labels=["linux", "x64"])
    rid, token = created["_id"], created["token"]
    status, script, headers = invoke("GetInstallScript", install_event(org, rid, token))
    assert status == 200, script
    assert headers["Content-Type"] == "text/x-shellscript"
    assert headers["Cache-Control"] == "no-store"
    assert isinstance(script, str) and script.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in script and "umask 077" in script and "chmod 600" in script
    assert "https://api.example.com/prod" in script and token in script
    assert get_settings().agent_package_spec == ""  # the default: the stack's own agent, carried inline
    assert "python3" in script and "(3, 11)" in script
    assert "$agent run --exec '<your command>'" in script
    assert "$agent install-service $service_mode --exec" in script
    assert script.rstrip().endswith('main "$@"')  # a truncated download runs nothing

    subprocess.run(["sh", "-n"], input=script, text=True, check=True)  # it parses
    # Every interpolated value comes back verbatim when the shell reads the assignments.
    assignments = _assignment_block(script)
    result = subprocess.run(
        ["sh", "-c", assignments + '\nprintf "%s\\n%s" "$HANGAR_RUNNER_NAME" "$HANGAR_AGENT_CONFIG_JSON"'],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    name, _, config_json = result.stdout.partition("\n")
    # The agent wheel built with the stack travels in the script, intact.
    carried = subprocess.run(
        [
            "sh",
            "-c",
            assignments + '\nprintf "%s\\n%s\\n%s" "$HANGAR_AGENT_WHEEL_NAME" "$HANGAR_AGENT_WHEEL_SHA256"'
            ' "$HANGAR_AGENT_WHEEL_BASE64"',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n", 2)
    assert carried[0] == wheel.name
    assert base64.b64decode(carried[2]) == wheel.read_bytes()
    assert carried[1] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert name == NASTY_NAME
    config = json.loads(config_json)
    assert config == {
        "apiUrl": "https://api.example.com/prod",
        "runnerId": rid,
        "token": token,
        "tokenPrefix": created["tokenPrefix"],
        "name": NASTY_NAME,
        "labels": ["linux", "x64"],
        "configuredConcurrency": 1,
    }
    assert not os.path.exists(tmp_path / "pwned")


def _assignment_block(script: str) -> str:
    """The variable assignments at the top of the script (from the first HANGAR_ line to the blank line)."""
    start = script.index("\nHANGAR_API_URL=") + 1
    end = script.index("\n\nsay()", start)
    return script[start:end]


def test_install_script_refuses_other_runners_and_regenerated_tokens(aws: AwsStack) -> None:
    org = unique_org()
    created = create_runner(org)
    rid, token = created["_id"], created["token"]
    # Another runner's id in the path: 404 (JSON, in the /api dialect).
    status, body, headers = invoke("GetInstallScript", install_event(org, rid, token, path_runner_id="rnr_other"))
    assert status == 404 and body["success"] is False and headers["Content-Type"] == "application/json"
    # The token in the query must be the one the authorizer checked.
    event = install_event(org, rid, token)
    event["queryStringParameters"] = {"token": tokens.mint(tokens.TokenType.RUNNER).raw}
    status, body, _ = invoke("GetInstallScript", event)
    assert status == 401, body
    # A token regenerated since (the authorizer's context still says version 1): 401, no script.
    stale_event = install_event(org, rid, token)
    no_principal = install_event(org, rid, token)
    no_principal["requestContext"]["authorizer"] = {"principalType": "public"}
    status, _, _ = regenerate(org, rid)
    assert status == 200
    status, body, headers = invoke("GetInstallScript", stale_event)
    assert status == 401 and body["error"]["code"] == "token_regenerated", body
    assert headers["Content-Type"] == "application/json"
    # Without a runner principal at all: 401.
    status, _, _ = invoke("GetInstallScript", no_principal)
    assert status == 401


def test_a_stack_built_without_its_agent_serves_a_script_that_fails_before_changing_anything(
    aws: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hangar.fleet import install_script

    monkeypatch.setattr(install_script, "AGENT_WHEEL_DIR", tmp_path / "no-wheel-here")
    org = unique_org()
    created = create_runner(org)
    status, script, _ = invoke("GetInstallScript", install_event(org, created["_id"], created["token"]))
    assert status == 200
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        ["sh"], input=script, text=True, capture_output=True, env={"HOME": str(home), "PATH": os.environ["PATH"]}
    )
    assert result.returncode == 1
    assert "built without its agent: build it with 'make build'" in result.stderr
    assert list(home.iterdir()) == []


def test_sam_build_ships_the_agent_wheel_in_the_layer() -> None:
    """Where Lambda finds it: /opt/python/hangar/fleet/agent_wheel/, next to install_script.py in the layer."""
    built = Path(__file__).resolve().parents[2] / ".aws-sam" / "build" / "HangarLayer" / "python" / "hangar"
    if not (built / "fleet" / "install_script.py").exists():
        pytest.skip("no sam build output (make build, part of make test, makes it)")
    (shipped,) = (built / "fleet" / "agent_wheel").glob("hangar_agent-*-py3-none-any.whl")
    with zipfile.ZipFile(shipped) as wheel:
        names = set(wheel.namelist())
    assert {"hangar_agent/cli.py", "hangar_agent/hangar-agent.service"} <= names


def test_shell_quoting_of_every_value(aws: AwsStack) -> None:
    from hangar.fleet.install_script import render_install_script

    script = render_install_script(
        api_url="https://x.example/prod",
        runner_id="rnr_1",
        token="hgr_tok",
        token_prefix="abc",
        name="@@AGENT_PACKAGE@@ '",
        labels=[],
        configured_concurrency=1,
        agent_package="/path with spaces/agent",
    )
    block = _assignment_block(script)
    assert "HANGAR_RUNNER_NAME=" + shlex.quote("@@AGENT_PACKAGE@@ '") in block
    assert "HANGAR_AGENT_PACKAGE='/path with spaces/agent'" in block


def test_bad_input_names_the_field(aws: AwsStack) -> None:
    org = unique_org()
    created = create_runner(org)
    too_long = "r" * 129
    status, body, _ = regenerate(org, too_long)
    assert status == 400 and body["error"]["field"] == "runnerId", body
    status, body = setup_info(org, too_long)
    assert status == 400 and body["error"]["field"] == "runnerId", body
    status, body, _ = invoke("GetInstallScript", install_event(org, created["_id"], created["token"], too_long))
    assert status == 400 and body["error"]["field"] == "runnerId", body
    # The install script's token is its credential: absent or not this runner's, 401 (never a script).
    status, body, _ = invoke("GetInstallScript", install_event(org, created["_id"], None))
    assert status == 401, body


def test_concurrent_regeneration_or_deletion_is_a_clean_4xx(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner changes between the read and the transaction: 409 (token changed) or 404 (deleted)."""
    from hangar.fleet import runner_tokens

    org = unique_org()
    rid = create_runner(org)["_id"]
    stale = runner_tokens.runners.get_runner(org, rid)
    status, _, _ = regenerate(org, rid)
    assert status == 200
    monkeypatch.setattr(runner_tokens.runners, "get_runner", lambda org_id, runner_id: stale)
    status, body, _ = regenerate(org, rid)
    assert status == 409 and body["error"]["code"] == "token_changed", body
    monkeypatch.undo()

    stale = runner_tokens.runners.get_runner(org, rid)
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": rid}))
    assert status == 200
    monkeypatch.setattr(runner_tokens.runners, "get_runner", lambda org_id, runner_id: stale)
    status, body, _ = regenerate(org, rid)
    assert status == 404, body
    # Nothing was left behind: no token item points at the deleted runner.
    assert not [i for i in aws.scan_all() if i.get("runnerId", {}).get("S") == rid and "kind" in i]


def test_a_regeneration_refused_with_409_or_404_uses_no_budget(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was counted before the transaction that then ended 409 (issue 10, item 11): five refused
    regenerations used the whole hour's budget, and the sixth, valid one got 429."""
    from hangar.fleet import runner_tokens

    org = unique_org()
    rid = create_runner(org)["_id"]
    stale = runner_tokens.runners.get_runner(org, rid)
    assert regenerate(org, rid)[0] == 200  # 1 of 5 used
    with monkeypatch.context() as patched:
        patched.setattr(runner_tokens.runners, "get_runner", lambda org_id, runner_id: stale)
        for _ in range(limits.REGENERATIONS_PER_HOUR):
            status, body, _ = regenerate(org, rid)
            assert status == 409 and body["error"]["code"] == "token_changed", body
    for _ in range(limits.REGENERATIONS_PER_HOUR - 1):
        status, body, _ = regenerate(org, rid)
        assert status == 200, body
    status, body, headers = regenerate(org, rid)
    assert status == 429 and int(headers["Retry-After"]) > 0, body
