"""Settings (hangar.core.config, pydantic-settings): read from the environment once per process, every
value validated, an invalid one a start-up error naming its variable, no secret with a default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hangar.core import config
from hangar.core.config import ConfigurationError, Settings, get_settings
from pydantic import SecretStr, ValidationError
from support import ROOT, template

# What template.yaml gives every function that is not Hangar's: Powertools' and the SDK's own.
NOT_HANGAR_SETTINGS = ("POWERTOOLS_", "AWS_")


def test_an_invalid_value_is_refused_naming_its_variable() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"HEARTBEAT_INTERVAL_SECONDS": "abc"})

    message = str(refused.value)
    assert "HEARTBEAT_INTERVAL_SECONDS='abc'" in message
    assert "valid integer" in message


def test_every_invalid_value_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"INDEX_SHARDS": "0", "DEFAULT_PLAN": "gold", "ALLOW_INSECURE_WEBHOOKS": "maybe"})

    message = str(refused.value)
    for variable in ("INDEX_SHARDS", "DEFAULT_PLAN", "ALLOW_INSECURE_WEBHOOKS"):
        assert variable in message


@pytest.mark.parametrize(
    "variable", ["HEARTBEAT_INTERVAL_SECONDS", "POLL_INTERVAL_SECONDS", "STALE_AFTER_SECONDS", "TENANT_KEY_LIMIT"]
)
def test_counts_and_intervals_are_bounded(variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: "-1"})


def test_runners_must_heartbeat_more_often_than_they_go_stale() -> None:
    with pytest.raises(ConfigurationError, match="STALE_AFTER_SECONDS \\(30\\) must exceed HEARTBEAT_INTERVAL"):
        Settings.from_env({"STALE_AFTER_SECONDS": "30", "HEARTBEAT_INTERVAL_SECONDS": "30"})
    accepted = Settings.from_env({"STALE_AFTER_SECONDS": "31", "HEARTBEAT_INTERVAL_SECONDS": "30"})
    assert accepted.stale_after_seconds == 31


def test_lists_and_plan_ids_are_comma_separated() -> None:
    settings = Settings.from_env({"JWT_ALGORITHMS": " RS256, ES256 ,", "USAGE_PLAN_IDS": "free=abc123, team = def456"})

    assert settings.jwt_algorithms == ["RS256", "ES256"]
    assert settings.usage_plan_ids == {"free": "abc123", "team": "def456"}
    with pytest.raises(ConfigurationError, match="USAGE_PLAN_IDS='free'"):
        Settings.from_env({"USAGE_PLAN_IDS": "free"})


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"HEARTBEAT_INTERVAL_SECONDS": "", "JWT_ALGORITHMS": "", "ORGS_TABLE": ""})

    assert (settings.heartbeat_interval_seconds, settings.jwt_algorithms) == (30, ["HS256"])
    assert settings.orgs_table == "hangar-orgs"


def test_a_given_environment_is_read_alone_and_as_the_process_environment_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {"JWT_ALGORITHMS": "RS256", "JWT_JWKS_URL": "https://issuer.example/jwks", "INDEX_SHARDS": "8"}
    given = Settings.from_env(environment)
    assert given.jwt_secret.get_secret_value() == ""  # the process's JWT_SECRET (tests/conftest.py) is not read

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == given


def test_no_dotenv_file_or_secrets_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("HEARTBEAT_INTERVAL_SECONDS=7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEARTBEAT_INTERVAL_SECONDS", raising=False)

    assert Settings.from_env().heartbeat_interval_seconds == 30


def test_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    first = get_settings()
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "abc")  # read by nobody until the cache is cleared
    try:
        assert get_settings() is first
        get_settings.cache_clear()
        with pytest.raises(ConfigurationError, match="POLL_INTERVAL_SECONDS"):
            get_settings()
    finally:
        monkeypatch.delenv("POLL_INTERVAL_SECONDS")
        get_settings.cache_clear()


def test_no_secret_has_a_default_and_none_is_shown() -> None:
    secrets = {name for name, field in Settings.model_fields.items() if field.annotation is SecretStr}
    assert secrets == {"jwt_secret", "token_pepper"} == config.SECRET_SETTINGS
    defaults = Settings.from_env({})
    assert all(getattr(defaults, name).get_secret_value() == "" for name in secrets)

    secret = "a-deployment-secret-of-forty-bytes-long!"
    settings = Settings.from_env({"JWT_SECRET": secret, "TOKEN_PEPPER": secret})
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    assert settings.jwt_secret.get_secret_value() == secret


def test_a_refused_secret_is_not_echoed() -> None:
    """A secret can fail validation only from code today (any string is a valid secret), but the
    message builder never shows a secret's value, whatever the future constraint."""
    with pytest.raises(ValidationError) as refused:
        Settings(jwt_secret=12345678901234, token_pepper=["pepper-value"])  # type: ignore[arg-type]

    message = config._configuration_problems(refused.value)
    assert "JWT_SECRET" in message and "TOKEN_PEPPER" in message
    assert "12345678901234" not in message and "pepper-value" not in message


def test_every_variable_the_template_sets_is_a_setting() -> None:
    """template.yaml's function environment (Globals and per function) names settings only, spelt as
    their fields (besides Powertools' and the SDK's own variables)."""
    loaded = template()
    variables = set(loaded["Globals"]["Function"]["Environment"]["Variables"])
    for resource in loaded["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables |= set((resource["Properties"].get("Environment") or {}).get("Variables") or {})
    hangar_variables = {name for name in variables if not name.startswith(NOT_HANGAR_SETTINGS)}

    assert len(hangar_variables) > 30
    assert {name.lower() for name in hangar_variables} <= set(Settings.model_fields)


@pytest.mark.parametrize(
    ("code_dir", "module"), [("functions/agent", "heartbeat"), ("functions/authorizers", "runner_authorizer")]
)
def test_an_invalid_value_fails_the_cold_start(code_dir: str, module: str) -> None:
    """A handler module's import (Lambda's init phase) reads the settings: a bad one fails there, with
    the variable named in the error, before any request is taken."""
    environment = {
        **os.environ,
        "HEARTBEAT_INTERVAL_SECONDS": "abc",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "hangar"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT / code_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "ConfigurationError: Invalid configuration: HEARTBEAT_INTERVAL_SECONDS='abc'" in result.stderr
