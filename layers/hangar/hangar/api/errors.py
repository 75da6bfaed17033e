"""The one mapping of errors to HTTP: the two response dialects' error bodies, their OpenAPI models,
the statuses every route may answer, and how a request validation error names its field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel

from hangar.core.errors import HangarError, RateLimited

JSON = content_types.APPLICATION_JSON


class Dialect(StrEnum):
    API = "api"  # runner management and the agent protocol: {"success": true, "data": ...}
    V1 = "v1"  # fleet, enrollment, readiness, jobs, ...: plain JSON (docs/architecture.md)


def compact_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def error_body(
    dialect: Dialect, code: str, message: str, field: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    error.update(details or {})
    return {"success": False, "error": error} if dialect is Dialect.API else {"error": error}


def error_response(dialect: Dialect, error: HangarError) -> Response[str]:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=compact_json(error_body(dialect, error.code, error.message, error.field, error.details)),
        headers=headers,
    )


def field_of(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_message(error: dict[str, Any], field: str) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "Request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    if kind == "missing":
        return f"{field}: field required" if field != "body" else "Request body is required"
    return f"{field}: {error.get('msg', 'invalid value')}"


class ErrorDetail(BaseModel):
    code: str
    message: str
    # Present on 400s (and some 404s/413s): the request field at fault, e.g. `labels.0` or `runnerId`.
    field: str | None = None


class ApiErrorBody(BaseModel):
    """`/api` dialect error (also the body of API Gateway's own 401/403/404/429 gateway responses)."""

    success: Literal[False] = False
    error: ErrorDetail


class V1ErrorBody(BaseModel):
    """`/v1` dialect error; the gateway's own responses add `success: false`, which clients ignore."""

    error: ErrorDetail


# What every route may answer besides its success; 409 only where a state transition can be refused.
ERROR_STATUSES = {
    400: "Invalid input; `error.field` names the field at fault",
    401: "Missing or invalid credential",
    403: "Missing scope, or the license forbids it",
    404: "Unknown id, or another tenant's",
    409: "Invalid state transition, or a concurrent change",
    413: "Body too large",
    415: "A body that is not `application/json`",
    429: "Rate limited; retry after `Retry-After` seconds",
}
CONFLICT = 409
