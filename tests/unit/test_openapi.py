"""docs/openapi.json is generated from the handlers; it must not drift from them, and it documents everything."""

from __future__ import annotations

import json
from typing import Any

import hangar.identity.auth
from support import template

from local.openapi import OPENAPI_FILE, build_openapi, render
from local.template import routes

ERRORS_ON_EVERY_ROUTE = ("400", "401", "403", "404", "413", "415", "429")
SCOPES = set(hangar.identity.auth.SCOPES)


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    resolved: dict[str, Any] = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return resolved


def test_committed_openapi_matches_the_code() -> None:
    generated = render(build_openapi())
    assert OPENAPI_FILE.read_text() == generated, "docs/openapi.json is stale: run `python -m local openapi`"


def test_every_template_route_is_documented_with_errors_and_security() -> None:
    document = _document()
    for route in routes(template()):
        operation = document["paths"][route.path][route.method.lower()]
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), route
        for code in ERRORS_ON_EVERY_ROUTE:
            assert code in responses, (route, code)
            body = _resolve(document, responses[code]["content"]["application/json"]["schema"])
            assert "error" in body["required"], (route, code)
        assert "Retry-After" in responses["429"].get("headers", {}), route
        if route.authorizer not in (None, "PublicAuthorizer"):
            assert operation["security"], route


def test_every_success_body_is_a_real_model_in_its_dialect() -> None:
    """No Powertools placeholder (`{"type": "string", "title": "Return"}`): each 2xx names its view."""
    document = _document()
    for route in routes(template()):
        operation = document["paths"][route.path][route.method.lower()]
        successes = {code: value for code, value in operation["responses"].items() if code.startswith("2")}
        assert len(successes) == 1, (route, sorted(successes))
        (content,) = successes.values()
        if route.path.endswith("/setup"):
            assert content["content"] == {"text/x-shellscript": {"schema": {"type": "string"}}}
            continue
        body = _resolve(document, content["content"]["application/json"]["schema"])
        assert body.get("type") == "object" and body.get("properties"), route
        if route.path.startswith("/api/"):
            assert {"success", "data"} <= set(body["required"]), route
            assert body["properties"]["success"] == {"const": True, "title": "Success", "type": "boolean"}
        else:
            assert "success" not in body["properties"], route
        has_page = any(parameter["name"] == "cursor" for parameter in operation.get("parameters", []))
        assert has_page == ("nextCursor" in body["properties"]), route
        if has_page:
            assert "nextCursor" in body["required"], route


def test_user_routes_document_their_scopes_on_every_user_scheme() -> None:
    document = _document()
    for route in routes(template()):
        operation = document["paths"][route.path][route.method.lower()]
        if route.authorizer != "UserAuthorizer":
            assert all(scopes == [] for requirement in operation["security"] for scopes in requirement.values())
            continue
        by_scheme: dict[str, set[str]] = {}
        for requirement in operation["security"]:
            ((scheme, scopes),) = requirement.items()
            assert len(scopes) == 1 and scopes[0] in SCOPES, (route, requirement)
            by_scheme.setdefault(scheme, set()).update(scopes)
        assert set(by_scheme) == {"bearerAuth", "apiKey"}, route
        assert by_scheme["bearerAuth"] == by_scheme["apiKey"], route


def test_parameters_are_never_documented_as_null() -> None:
    """A query parameter, header or optional body is left out to mean None; `null` is no value on the wire."""
    document = _document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schemas = [parameter["schema"] for parameter in operation.get("parameters", [])]
            schemas += [media["schema"] for media in operation.get("requestBody", {}).get("content", {}).values()]
            for schema in schemas:
                assert {"type": "null"} not in schema.get("anyOf", []), (method, path, schema)


def test_lists_document_their_page_limits() -> None:
    document = _document()
    limit = next(
        parameter for parameter in document["paths"]["/v1/targets"]["get"]["parameters"] if parameter["name"] == "limit"
    )
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 200
    assert limit["schema"]["default"] == 50
