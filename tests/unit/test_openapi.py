"""docs/openapi.json is generated from the handlers; it must not drift from them."""

from __future__ import annotations

import json

from support import template

from local.openapi import OPENAPI_FILE, build_openapi, render
from local.template import routes


def test_committed_openapi_matches_the_code() -> None:
    generated = render(build_openapi())
    assert OPENAPI_FILE.read_text() == generated, "docs/openapi.json is stale: run `python -m local openapi`"


def test_every_template_route_is_documented_with_errors_and_security() -> None:
    document = json.loads(OPENAPI_FILE.read_text())
    for route in routes(template()):
        operation = document["paths"][route.path][route.method.lower()]
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), route
        for code in ("400", "401", "403", "429"):
            assert code in responses, (route, code)
        assert "Retry-After" in responses["429"].get("headers", {}), route
        if route.authorizer not in (None, "PublicAuthorizer"):
            assert operation["security"], route
