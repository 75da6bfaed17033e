"""docs/openapi.json, generated from the handlers themselves (their Powertools routes and pydantic models).

Each handler module's resolver knows its route, parameters, request model and documented responses;
this merges them in template order and adds what only the template knows: the security schemes of
each route's authorizer (with the scopes the handler declares) and the function's description.
`python -m local openapi` writes the file; `python -m local openapi --check` (and
tests/unit/test_openapi.py) fail when it drifts from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from hangar.api.http import USER_SCOPES_SCHEME

from local import REPO_ROOT
from local.functions import _import_file
from local.template import Route, functions, load_template, routes

OPENAPI_FILE = REPO_ROOT / "docs" / "openapi.json"
TITLE = "Hangar API"
VERSION = "0.1.0"

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT (RS256/ES256 via JWKS, or HS256), or a `hgk_` API key as a bearer token",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "A `hgk_` API key"},
    "runnerToken": {"type": "apiKey", "in": "header", "name": "X-Runner-Token", "description": "A `hgr_` token"},
    "installToken": {"type": "apiKey", "in": "query", "name": "token", "description": "A `hgr_` runner token"},
}
SECURITY_BY_AUTHORIZER: dict[str | None, list[str]] = {
    "UserAuthorizer": ["bearerAuth", "apiKey"],
    "RunnerTokenAuthorizer": ["runnerToken"],
    "InstallTokenAuthorizer": ["installToken"],
    "PublicAuthorizer": [],
    None: [],
}
# Powertools documents its own 422 and a placeholder 200; Hangar answers 400 and documents its own.
_DROPPED_RESPONSES = ("422",)
_DROPPED_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _security(route: Route, declared: list[dict[str, list[str]]] | None) -> list[dict[str, list[str]]]:
    """The route's security requirements: its authorizer's schemes, each with the scopes the handler
    declares (`app.requires(...)`: one requirement per alternative scope)."""
    schemes = SECURITY_BY_AUTHORIZER.get(route.authorizer, [])
    alternatives = [scopes for requirement in declared or [] for scopes in requirement.values()]
    if alternatives and route.authorizer != "UserAuthorizer":
        raise ValueError(f"{route.method} {route.path} declares scopes but is no user route")
    if route.authorizer == "UserAuthorizer" and not alternatives:
        raise ValueError(f"{route.method} {route.path} is a user route: declare its scope with app.requires()")
    return [{scheme: scopes} for scopes in alternatives or [[]] for scheme in schemes]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's (or optional body's) schema without the `null` branch of `X | None`: leaving it out
    is how a client says None."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == len(branches):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def build_openapi(template_file: Path | None = None) -> dict[str, Any]:
    template = load_template(template_file)
    specs = functions(template, REPO_ROOT)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Hangar: control plane for self-hosted runners. Generated from the handlers.",
        },
        "servers": [{"url": "http://127.0.0.1:3000", "description": "make run"}],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": SECURITY_SCHEMES},
    }
    for route in routes(template):
        spec = specs[route.function_id]
        module = _import_file(f"hangar_openapi_{route.function_id}", spec)
        schema = json.loads(
            module.app.get_openapi_json_schema(
                title=TITLE, version=VERSION, security_schemes={USER_SCOPES_SCHEME: HTTPBearer()}
            )
        )
        operations = schema.get("paths", {}).get(route.path)
        if not operations or route.method.lower() not in operations:
            raise ValueError(f"{spec.module_file} does not serve {route.method} {route.path} as template.yaml says")
        operation = operations[route.method.lower()]
        for code in _DROPPED_RESPONSES:
            operation["responses"].pop(code, None)
        declared = [code for code in operation["responses"] if code.startswith("2")]
        if len(declared) > 1:
            # Powertools adds a placeholder 200 beside a documented 201.
            operation["responses"].pop("200", None)
        for parameter in operation.get("parameters", []):
            parameter["schema"] = _without_null(parameter["schema"])
        for media in operation.get("requestBody", {}).get("content", {}).values():
            # An optional body is left out, never `null`: a body is a JSON object (hangar.api.http).
            media["schema"] = _without_null(media["schema"])
        operation["operationId"] = route.function_id.removesuffix("Function")
        operation["summary"] = str(spec.properties.get("Description") or operation.get("summary", ""))
        operation["tags"] = [spec.code_dir.name]
        operation["security"] = _security(route, operation.get("security"))
        document["paths"].setdefault(route.path, {})[route.method.lower()] = operation
        for name, definition in schema.get("components", {}).get("schemas", {}).items():
            if name in _DROPPED_SCHEMAS:
                continue
            existing = document["components"]["schemas"].setdefault(name, definition)
            if existing != definition:
                raise ValueError(f"two different models are both called {name}; rename one")
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_openapi(path: Path = OPENAPI_FILE) -> Path:
    path.write_text(render(build_openapi()))
    return path


def drift(path: Path = OPENAPI_FILE) -> bool:
    """True when the committed document differs from what the code generates."""
    return not path.is_file() or path.read_text() != render(build_openapi())
