"""CORS on handler responses (hangar.api.http.with_cors): only the configured console origin may read them,
on success, on a handler's own refusal before parsing, and on a validation error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hangar.core.config import get_settings
from support import AwsStack, invoke, unique_org, user_event

CONSOLE = "https://console.example.com"


@pytest.fixture
def console_origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CORS_ALLOWED_ORIGIN", CONSOLE)
    get_settings.cache_clear()
    yield CONSOLE
    monkeypatch.delenv("CORS_ALLOWED_ORIGIN")
    get_settings.cache_clear()


def _with_origin(event: dict[str, Any], origin: str | None) -> dict[str, Any]:
    if origin is not None:
        event["headers"] = {**(event.get("headers") or {}), "Origin": origin}
        event["multiValueHeaders"] = {**(event.get("multiValueHeaders") or {}), "Origin": [origin]}
    return event


def _license(origin: str | None, scopes: str = "runners:read") -> tuple[int, dict[str, str]]:
    event = _with_origin(user_event("GetLicense", unique_org(), scopes=scopes), origin)
    status, _, headers = invoke("GetLicense", event)
    return status, headers


def test_the_console_origin_may_read_a_response_and_what_it_exposes(aws: AwsStack, console_origin: str) -> None:
    status, headers = _license(console_origin)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == console_origin
    assert set(headers["Access-Control-Expose-Headers"].split(",")) == {"Retry-After", "x-amzn-RequestId"}
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://console.example.com.evil.example", "null", None])
def test_any_other_origin_or_none_gets_no_cors_header(aws: AwsStack, console_origin: str, origin: str | None) -> None:
    status, headers = _license(origin)
    assert status == 200
    assert not any(name.lower().startswith("access-control-") for name in headers)
    assert headers["Vary"] == "Origin"  # a shared cache must not give this answer to the console


def test_refusals_before_parsing_and_validation_errors_carry_cors_too(aws: AwsStack, console_origin: str) -> None:
    status, headers = _license(console_origin, scopes="keys:manage")  # no read scope: refused before parsing
    assert status == 403 and headers["Access-Control-Allow-Origin"] == console_origin
    event = _with_origin(user_event("CreateJob", unique_org(), body={"type": ""}), console_origin)
    status, body, headers = invoke("CreateJob", event)
    assert status == 400 and body["error"]["field"] == "type"
    assert headers["Access-Control-Allow-Origin"] == console_origin


def test_without_a_configured_origin_no_response_carries_cors(aws: AwsStack) -> None:
    status, headers = _license(CONSOLE)
    assert status == 200
    assert not any(name.lower().startswith("access-control-") or name.lower() == "vary" for name in headers)
