"""An API Gateway (REST, Lambda proxy integration) for the local stack, built from template.yaml.

`Gateway.handle(request)` does what API Gateway does for one request:

1. routing: the most specific resource wins segment by segment (static beats `{param}` beats
   `{proxy+}`); a trailing slash names the same resource; path parameters are URL-decoded; an
   unknown path, or a method the resource lacks, is 403 MISSING_AUTHENTICATION_TOKEN;
2. the rate-limit hook (`local.limits.LimitPolicy`) before the authorizer;
3. the route's Lambda authorizer (REQUEST or TOKEN): a missing identity source is 401 without a
   call; "Unauthorized" raised is 401; a Deny (or an Allow that does not cover the method ARN) is
   ACCESS_DENIED (403 unless the template says otherwise), its gateway response seeing the Deny's
   context as `$context.authorizer.*`; any other failure is 500; results are cached per identity for
   ReauthorizeEvery seconds;
4. the rate-limit hook after the authorizer, with the usage identifier key it returned;
5. the integration: the function gets the full REST v1 proxy event and its response becomes HTTP
   (a malformed response or an exception is 502, as in API Gateway).

When the gateway itself refuses, the body and status come from the template's GatewayResponses
(falling back to DEFAULT_4XX / DEFAULT_5XX, then to API Gateway's defaults). Every response has an
`x-amzn-RequestId` header. Time is `hangar.clock.now()` throughout, so `POST /_local/clock` moves
the authorizer cache (and rate-limit windows) with the handlers' clock.

Local-only routes under `/_local/` (never in the template): `GET /_local/health`, `GET|POST
/_local/clock` (`{"advanceSeconds": n}`), `POST /_local/schedules/<FunctionLogicalId>`,
`POST /_local/authorizer-cache/flush`, `GET /_local/routes`; and `GET /openapi.json` serves
docs/openapi.json.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from hangar import clock

from local import REPO_ROOT
from local.limits import AllowAll, Grant, LimitPolicy, Refusal, RequestInfo
from local.schedules import scheduled_event
from local.template import (
    ACCOUNT_ID,
    LOCAL_API_ID,
    REGION,
    ApiSettings,
    AuthorizerSpec,
    GatewayResponseSpec,
    Route,
    ScheduleSpec,
)

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit; larger requests are refused at the socket (handlers check 64 KiB)."""


class Invoker(Protocol):
    """What runs the functions (`local.functions.FunctionRegistry`; a stub in tests)."""

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> Any: ...


# --------------------------------------------------------------------------------------------------
# Requests and responses


@dataclass
class HttpRequest:
    """One HTTP request as the gateway sees it (path still percent-encoded)."""

    method: str
    raw_path: str
    query_string: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    host: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def json_response(status: int, data: Any, request_id: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if request_id:
        headers.append(("x-amzn-RequestId", request_id))
    return HttpResponse(status, headers, json.dumps(data, default=str).encode())


# --------------------------------------------------------------------------------------------------
# Routing


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


_PARAM_RE = re.compile(r"^\{([^{}+]+)(\+?)\}$")


def _segment_rank(segment: str) -> int:
    """0 static, 1 {param}, 2 {greedy+}: lower is more specific."""
    match = _PARAM_RE.match(segment)
    if not match:
        return 0
    return 2 if match.group(2) else 1


def split_path(raw_path: str) -> list[str] | None:
    """The path's segments, URL-decoded; a trailing slash is ignored. None for a path that cannot match."""
    if not raw_path.startswith("/"):
        return None
    parts = raw_path[1:].split("/")
    if parts and parts[-1] == "":
        parts.pop()
    if any(part == "" for part in parts):
        return None
    return [unquote(part) for part in parts]


class Router:
    """Resources (template paths) and the methods on each, matched the way API Gateway does."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.resources: dict[tuple[str, ...], dict[str, Route]] = {}
        for route in routes:
            self.resources.setdefault(route.segments, {})[route.method] = route
        self._ranked = sorted(self.resources, key=lambda segments: [_segment_rank(s) for s in segments])

    @staticmethod
    def _bind(resource: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for index, template_segment in enumerate(resource):
            param = _PARAM_RE.match(template_segment)
            if param and param.group(2):  # {proxy+}: the rest of the path, at least one segment
                rest = segments[index:]
                if not rest:
                    return None
                params[param.group(1)] = "/".join(rest)
                return params
            if index >= len(segments):
                return None
            if param:
                params[param.group(1)] = segments[index]
            elif template_segment != segments[index]:
                return None
        return params if len(resource) == len(segments) else None

    def resource(self, raw_path: str) -> tuple[tuple[str, ...], dict[str, str]] | None:
        """The most specific resource matching the path, and its path parameters."""
        segments = split_path(raw_path)
        if segments is None:
            return None
        best: tuple[list[int], tuple[str, ...], dict[str, str]] | None = None
        for resource in self._ranked:
            params = self._bind(resource, segments)
            if params is None:
                continue
            rank = [_segment_rank(s) for s in resource]
            if best is None or rank < best[0]:
                best = (rank, resource, params)
        return (best[1], best[2]) if best else None

    def match(self, method: str, raw_path: str) -> Match | None:
        """The route for METHOD path; None when the path or the method is unknown (API Gateway's 403)."""
        found = self.resource(raw_path)
        if found is None:
            return None
        resource, params = found
        methods = self.resources[resource]
        route = methods.get(method.upper()) or methods.get("ANY")
        return Match(route, params) if route else None

    def methods(self, raw_path: str) -> list[str]:
        found = self.resource(raw_path)
        return sorted(self.resources[found[0]]) if found else []


# --------------------------------------------------------------------------------------------------
# Gateway responses


@dataclass(frozen=True)
class _Default:
    status: int
    message: str | None
    error_type: str


DEFAULT_GATEWAY_RESPONSES: dict[str, _Default] = {
    "UNAUTHORIZED": _Default(401, "Unauthorized", "UnauthorizedException"),
    "ACCESS_DENIED": _Default(
        403, "User is not authorized to access this resource with an explicit deny", "AccessDeniedException"
    ),
    "MISSING_AUTHENTICATION_TOKEN": _Default(
        403, "Missing Authentication Token", "MissingAuthenticationTokenException"
    ),
    "INVALID_API_KEY": _Default(403, "Forbidden", "ForbiddenException"),
    "THROTTLED": _Default(429, "Too Many Requests", "TooManyRequestsException"),
    "QUOTA_EXCEEDED": _Default(429, "Limit Exceeded", "LimitExceededException"),
    "REQUEST_TOO_LARGE": _Default(413, "Request Too Long", "RequestTooLongException"),
    "BAD_REQUEST_BODY": _Default(400, "Invalid request body", "BadRequestException"),
    "BAD_REQUEST_PARAMETERS": _Default(400, "Invalid request parameters", "BadRequestException"),
    "AUTHORIZER_FAILURE": _Default(500, None, "AuthorizerFailureException"),
    "AUTHORIZER_CONFIGURATION_ERROR": _Default(500, None, "AuthorizerConfigurationException"),
    "INTEGRATION_FAILURE": _Default(502, "Internal server error", "InternalServerErrorException"),
    "INTEGRATION_TIMEOUT": _Default(504, "Endpoint request timed out", "InternalServerErrorException"),
    "DEFAULT_4XX": _Default(400, "Bad Request", "BadRequestException"),
    "DEFAULT_5XX": _Default(500, "Internal server error", "InternalServerErrorException"),
}
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'

_CONTEXT_VAR_RE = re.compile(r"\$\{context\.([A-Za-z0-9_.]+)\}|\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """`$context.x.y` / `${context.x.y}` replaced from `variables` ("x.y" keys); unknown ones are empty."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        value = variables.get(name)
        return "" if value is None else str(value)

    return _CONTEXT_VAR_RE.sub(replace, text)


# --------------------------------------------------------------------------------------------------
# Authorizer policies


def _pattern(resource: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(".".join(re.escape(p) for p in s.split("?")) for s in resource.split("*")) + "$")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _action_matches(action: Any) -> bool:
    return str(action).lower() in ("*", "execute-api:*", "execute-api:invoke")


def policy_allows(policy_document: Mapping[str, Any], method_arn: str) -> bool:
    """IAM evaluation as API Gateway applies it: an explicit Deny wins; otherwise an Allow must match."""
    allowed = False
    for statement in _as_list(policy_document.get("Statement")):
        if not isinstance(statement, Mapping):
            continue
        if not any(_action_matches(action) for action in _as_list(statement.get("Action"))):
            continue
        if not any(_pattern(str(r)).match(method_arn) for r in _as_list(statement.get("Resource"))):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        if effect == "allow":
            allowed = True
    return allowed


class AuthorizerConfigurationError(Exception):
    """The authorizer answered something API Gateway would not accept."""


def validate_authorizer_result(result: Any) -> tuple[str, Mapping[str, Any], dict[str, Any], str | None]:
    """(principalId, policyDocument, context, usageIdentifierKey) of a well-formed authorizer result."""
    if not isinstance(result, Mapping):
        raise AuthorizerConfigurationError("authorizer result is not an object")
    principal_id = result.get("principalId")
    policy = result.get("policyDocument")
    if principal_id is None or not isinstance(policy, Mapping):
        raise AuthorizerConfigurationError("authorizer result needs principalId and policyDocument")
    context = result.get("context") or {}
    if not isinstance(context, Mapping):
        raise AuthorizerConfigurationError("authorizer context is not an object")
    for key, value in context.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise AuthorizerConfigurationError(f"authorizer context value {key!r} is not a string/number/boolean")
    usage_key = result.get("usageIdentifierKey")
    return str(principal_id), policy, dict(context), (str(usage_key) if usage_key else None)


@dataclass
class _Cached:
    expires_at: float
    principal_id: str
    policy: Mapping[str, Any]
    context: dict[str, Any]
    usage_key: str | None


class AuthorizerCache:
    """Authorizer results per (authorizer, identity source values), kept for the authorizer's TTL."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, tuple[str, ...]], _Cached] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, tuple[str, ...]], now: float) -> _Cached | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires_at <= now:
                del self._entries[key]
                return None
            return entry

    def put(self, key: tuple[str, tuple[str, ...]], entry: _Cached) -> None:
        with self._lock:
            self._entries[key] = entry

    def flush(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


# --------------------------------------------------------------------------------------------------
# The gateway


class _Refused(Exception):
    def __init__(
        self,
        response_type: str,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        authorizer_context: Mapping[str, Any] | None = None,
    ):
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message
        self.headers = dict(headers or {})
        self.authorizer_context = dict(authorizer_context or {})  # a Deny's: $context.authorizer.* in the response


def _extended_request_id() -> str:
    return base64.b64encode(secrets.token_bytes(10)).decode()[:14].replace("/", "x").replace("+", "y") + "="


def _request_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


class Gateway:
    """API Gateway for one REST API: routes, authorizers, gateway responses, limits, admin routes."""

    def __init__(
        self,
        routes: Iterable[Route],
        authorizers: Mapping[str, AuthorizerSpec],
        gateway_responses: Mapping[str, GatewayResponseSpec],
        functions: Invoker,
        api: ApiSettings | None = None,
        schedules: Iterable[ScheduleSpec] = (),
        limit_policy: LimitPolicy | None = None,
        repo_root: Path = REPO_ROOT,
        now: Callable[[], float] = clock.now,
        advance_clock: Callable[[float], None] = clock.advance,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.routes = list(routes)
        self.router = Router(self.routes)
        self.authorizers = dict(authorizers)
        self.gateway_responses = dict(gateway_responses)
        self.functions = functions
        self.api = api or ApiSettings(logical_id=None)
        self.schedules = {s.function_id: s for s in schedules}
        self.limit_policy: LimitPolicy = limit_policy or AllowAll()
        self.repo_root = repo_root
        self.now = now
        self.advance_clock = advance_clock
        self.authorizer_cache = AuthorizerCache()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    @property
    def stage(self) -> str:
        return self.api.stage

    # -- entry point -------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The response API Gateway (plus the local admin routes) gives `request`."""
        request_id = str(uuid.uuid4())
        try:
            if request.raw_path == "/_local" or request.raw_path.startswith("/_local/"):
                return self._admin(request, request_id)
            if request.raw_path == "/openapi.json" and request.method in ("GET", "HEAD"):
                return self._openapi(request_id)
            return self._api(request, request_id)
        except Exception:
            self.log("local: gateway error\n" + traceback.format_exc())
            return self.gateway_response("DEFAULT_5XX", request_id, request, message="Internal server error")

    # -- gateway responses -------------------------------------------------------------------------

    def gateway_response(
        self,
        response_type: str,
        request_id: str,
        request: HttpRequest | None = None,
        *,
        message: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        resource_path: str | None = None,
        authorizer_context: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """The template's gateway response of that type (or its DEFAULT_4XX/5XX, or API Gateway's own)."""
        default = DEFAULT_GATEWAY_RESPONSES.get(response_type, DEFAULT_GATEWAY_RESPONSES["DEFAULT_4XX"])
        own = self.gateway_responses.get(response_type)
        family = self.gateway_responses.get("DEFAULT_5XX" if default.status >= 500 else "DEFAULT_4XX")
        final_status = status or (own.status if own and own.status else default.status)
        templates = (own.templates if own and own.templates else None) or (family.templates if family else None)
        extra_headers = dict(family.headers if family else {})
        extra_headers.update(own.headers if own else {})
        text_message = message if message is not None else default.message
        variables = {
            "requestId": request_id,
            "extendedRequestId": _extended_request_id(),
            "error.message": "null" if text_message is None else text_message,
            "error.messageString": json.dumps(text_message),
            "error.responseType": response_type,
            "error.validationErrorString": "",
            "stage": self.stage,
            "apiId": LOCAL_API_ID,
            "accountId": ACCOUNT_ID,
            "httpMethod": request.method if request else "",
            "path": f"/{self.stage}{request.raw_path}" if request else "",
            "resourcePath": resource_path or "",
            "identity.sourceIp": request.source_ip if request else "",
            "requestTimeEpoch": int(self.now() * 1000),
            **{f"authorizer.{key}": value for key, value in (authorizer_context or {}).items()},
        }
        content_type = "application/json"
        body_template = DEFAULT_TEMPLATE
        if templates:
            content_type = "application/json" if "application/json" in templates else next(iter(templates))
            body_template = templates[content_type]
        body = render_template(body_template, variables)
        merged: dict[str, tuple[str, str]] = {"content-type": ("Content-Type", content_type)}
        for name, value in extra_headers.items():
            merged[name.lower()] = (name, render_template(value, variables))
        for name, value in (headers or {}).items():  # the caller's (e.g. a limit's Retry-After) win
            merged[name.lower()] = (name, value)
        out_headers = [*merged.values(), ("x-amzn-RequestId", request_id)]
        out_headers.append(("x-amzn-ErrorType", default.error_type))
        return HttpResponse(final_status, out_headers, body.encode())

    # -- admin -------------------------------------------------------------------------------------

    def _admin(self, request: HttpRequest, request_id: str) -> HttpResponse:
        path = request.raw_path.rstrip("/")
        method = request.method
        if path == "/_local/health" and method in ("GET", "HEAD"):
            return json_response(200, {"ok": True}, request_id)
        if path == "/_local/clock" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    payload = json.loads(request.body or b"{}")
                    seconds = float(payload.get("advanceSeconds", 0))
                except (ValueError, TypeError, AttributeError):
                    return json_response(400, {"message": 'body must be {"advanceSeconds": <number>}'}, request_id)
                if seconds < 0:
                    return json_response(400, {"message": "the clock only moves forward"}, request_id)
                self.advance_clock(seconds)
            return json_response(200, {"now": self.now()}, request_id)
        if path == "/_local/authorizer-cache/flush" and method == "POST":
            return json_response(200, {"flushed": self.authorizer_cache.flush()}, request_id)
        if path == "/_local/routes" and method == "GET":
            routes = [
                {"method": r.method, "path": r.path, "function": r.function_id, "authorizer": r.authorizer}
                for r in self.routes
            ]
            return json_response(200, {"routes": routes}, request_id)
        if path.startswith("/_local/schedules/") and method == "POST":
            function_id = unquote(path.rsplit("/", 1)[1])
            schedule = self.schedules.get(function_id)
            if schedule is None:
                return json_response(404, {"message": f"no scheduled function {function_id!r}"}, request_id)
            try:
                result = self.run_schedule(schedule)
            except Exception as error:
                self.log(f"local: scheduled {function_id} failed\n" + traceback.format_exc())
                return json_response(500, {"message": f"{type(error).__name__}: {error}"}, request_id)
            return json_response(200, result, request_id)
        return json_response(404, {"message": f"no local admin route {method} {path}"}, request_id)

    def run_schedule(self, schedule: ScheduleSpec) -> Any:
        """Invoke a scheduled function once with the event EventBridge would send; its result."""
        return self.functions.invoke(schedule.function_id, scheduled_event(schedule))

    def _openapi(self, request_id: str) -> HttpResponse:
        document = self.repo_root / "docs" / "openapi.json"
        if not document.is_file():
            return json_response(404, {"message": "docs/openapi.json does not exist"}, request_id)
        return HttpResponse(
            200,
            [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
            document.read_bytes(),
        )

    # -- the API -----------------------------------------------------------------------------------

    def _cors_preflight(self, request: HttpRequest, request_id: str) -> HttpResponse | None:
        cors = self.api.cors
        if not cors or request.method != "OPTIONS":
            return None
        methods = self.router.methods(request.raw_path)
        if not methods:
            return None

        def value(key: str, default: str) -> str:
            raw = cors.get(key)
            if raw is None:
                return default
            text = str(raw)
            return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text

        headers = [
            ("Access-Control-Allow-Origin", value("AllowOrigin", "*")),
            ("Access-Control-Allow-Methods", value("AllowMethods", ",".join([*methods, "OPTIONS"]))),
            ("Access-Control-Allow-Headers", value("AllowHeaders", "*")),
            ("x-amzn-RequestId", request_id),
        ]
        if cors.get("MaxAge") is not None:
            headers.append(("Access-Control-Max-Age", value("MaxAge", "")))
        if cors.get("AllowCredentials"):
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return HttpResponse(200, [("Content-Type", "application/json"), *headers], b"{}")

    def _api(self, request: HttpRequest, request_id: str) -> HttpResponse:
        match = self.router.match(request.method, request.raw_path)
        if match is None:
            preflight = self._cors_preflight(request, request_id)
            if preflight is not None:
                return preflight
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id, request)
        route = match.route
        now = self.now()
        base = self._base_event(request, match, request_id, now)
        info = RequestInfo(
            method=request.method,
            path=base["path"],
            headers=base["headers"] or {},
            query=base["queryStringParameters"] or {},
            source_ip=request.source_ip,
            now=now,
        )
        try:
            refusal = self.limit_policy.before_authorizer(info, route)
            if refusal is not None:
                return self._refusal(refusal, request, request_id, route)
            grant: Grant | None = None
            latency_started = time.monotonic()
            if route.authorizer:
                grant = self._authorize(route, base, request_id)
            refusal = self.limit_policy.after_authorizer(info, route, grant)
            if refusal is not None:
                return self._refusal(refusal, request, request_id, route)
        except _Refused as refused:
            return self.gateway_response(
                refused.response_type,
                request_id,
                request,
                message=refused.message,
                headers=refused.headers,
                resource_path=route.path,
                authorizer_context=refused.authorizer_context,
            )
        event = dict(base)
        event["requestContext"] = dict(base["requestContext"])
        if grant is not None:
            authorizer_context: dict[str, Any] = dict(grant.context)
            authorizer_context["principalId"] = grant.principal_id
            authorizer_context["integrationLatency"] = int((time.monotonic() - latency_started) * 1000)
            event["requestContext"]["authorizer"] = authorizer_context
            if grant.usage_identifier_key and route.api_key_required:
                event["requestContext"]["identity"] = {
                    **event["requestContext"]["identity"],
                    "apiKey": grant.usage_identifier_key,
                }
        return self._integrate(route, event, request, request_id)

    def _refusal(self, refusal: Refusal, request: HttpRequest, request_id: str, route: Route) -> HttpResponse:
        if refusal.body is not None:
            headers = [("Content-Type", "application/json"), *refusal.headers.items()]
            headers.append(("x-amzn-RequestId", request_id))
            return HttpResponse(refusal.status or 429, headers, refusal.body.encode())
        return self.gateway_response(
            refusal.response_type,
            request_id,
            request,
            message=refusal.message,
            status=refusal.status,
            headers=refusal.headers,
            resource_path=route.path,
        )

    # -- events ------------------------------------------------------------------------------------

    def method_arn(self, method: str, path: str) -> str:
        api = f"{LOCAL_API_ID}/{self.stage}"
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api}/{method}/{path.lstrip('/')}"

    def _base_event(self, request: HttpRequest, match: Match, request_id: str, now: float) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        for name, value in (
            ("X-Forwarded-For", request.source_ip),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", request.host.rpartition(":")[2] or "80"),
        ):
            if request.header(name) is None:
                headers[name] = value
                multi_headers[name] = [value]
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query_string, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        path = request.raw_path  # as sent: REST APIs keep the percent-encoding (pathParameters are decoded)
        body: str | None = None
        is_base64 = False
        if request.body:
            content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
            if self._binary(content_type):
                body, is_base64 = base64.b64encode(request.body).decode(), True
            else:
                body = request.body.decode("utf-8", errors="replace")
        request_context: dict[str, Any] = {
            "resourceId": match.route.path.strip("/").replace("/", "-")[:10] or "root",
            "resourcePath": match.route.path,
            "httpMethod": request.method,
            "extendedRequestId": _extended_request_id(),
            "requestTime": _request_time(now),
            "path": f"/{self.stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "domainPrefix": request.host.split(":")[0].split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("user-agent"),
                "user": None,
                "apiKey": None,
                "apiKeyId": None,
            },
            "domainName": request.host,
            "apiId": LOCAL_API_ID,
        }
        return {
            "resource": match.route.path,
            "path": path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": match.path_parameters or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _binary(self, content_type: str) -> bool:
        types = self.api.properties.get("BinaryMediaTypes") or []
        for media_type in types:
            media = str(media_type).replace("~1", "/").lower()
            if media in ("*/*", content_type) or (media.endswith("/*") and content_type.startswith(media[:-1])):
                return bool(content_type)
        return False

    # -- authorizers -------------------------------------------------------------------------------

    def _identity(self, spec: AuthorizerSpec, event: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The identity source values in order; None when one is missing (API Gateway's 401)."""
        values: list[str] = []
        headers = event.get("headers") or {}
        lowered = {k.lower(): v for k, v in headers.items()}
        for name in spec.headers:
            value = lowered.get(name.lower())
            if not value:
                return None
            values.append(value)
        query = event.get("queryStringParameters") or {}
        for name in spec.query_strings:
            value = query.get(name)
            if not value:
                return None
            values.append(value)
        if spec.stage_variables:
            return None  # no stage variables locally: a required one is missing
        for name in spec.context:
            values.append(str(event["requestContext"].get(name, "")))
        return tuple(values)

    def _authorize(self, route: Route, base: Mapping[str, Any], request_id: str) -> Grant:
        name = route.authorizer or ""
        spec = self.authorizers.get(name)
        if spec is None:
            self.log(f"local: route {route.method} {route.path} names unknown authorizer {name!r}")
            raise _Refused("AUTHORIZER_CONFIGURATION_ERROR")
        method_arn = self.method_arn(base["httpMethod"], base["path"])
        identity = self._identity(spec, base)
        if identity is None:
            raise _Refused("UNAUTHORIZED")
        expression = spec.validation_expression if spec.payload_type == "TOKEN" else None
        if expression and not re.fullmatch(expression, identity[0]):
            raise _Refused("UNAUTHORIZED")
        cache_key = (spec.name, identity)
        now = self.now()
        cached = self.authorizer_cache.get(cache_key, now) if spec.ttl_seconds > 0 else None
        if cached is None:
            cached = self._invoke_authorizer(spec, base, method_arn, request_id, now)
            if spec.ttl_seconds > 0:
                self.authorizer_cache.put(cache_key, cached)
        if not policy_allows(cached.policy, method_arn):
            raise _Refused("ACCESS_DENIED", authorizer_context={**cached.context, "principalId": cached.principal_id})
        return Grant(
            authorizer=spec.name,
            principal_id=cached.principal_id,
            context=cached.context,
            usage_identifier_key=cached.usage_key,
        )

    def _invoke_authorizer(
        self, spec: AuthorizerSpec, base: Mapping[str, Any], method_arn: str, request_id: str, now: float
    ) -> _Cached:
        if spec.payload_type == "TOKEN":
            header = spec.headers[0] if spec.headers else "Authorization"
            lowered = {k.lower(): v for k, v in (base.get("headers") or {}).items()}
            event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": lowered.get(header.lower(), ""),
                "methodArn": method_arn,
            }
        else:
            event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "resource": base["resource"],
                "path": base["path"],
                "httpMethod": base["httpMethod"],
                "headers": base["headers"],
                "multiValueHeaders": base["multiValueHeaders"],
                "queryStringParameters": base["queryStringParameters"],
                "multiValueQueryStringParameters": base["multiValueQueryStringParameters"],
                "pathParameters": base["pathParameters"],
                "stageVariables": base["stageVariables"],
                "requestContext": base["requestContext"],
            }
        try:
            result = self.functions.invoke(spec.function_id, event, request_id)
        except FileNotFoundError as error:  # an authorizer whose handler is not written yet
            self.log(f"local: {error}")
            raise _Refused("AUTHORIZER_FAILURE") from None
        except Exception as error:
            if str(error) == "Unauthorized":
                raise _Refused("UNAUTHORIZED") from None
            self.log(f"local: authorizer {spec.name} ({spec.function_id}) failed\n" + traceback.format_exc())
            raise _Refused("AUTHORIZER_FAILURE") from None
        try:
            principal_id, policy, context, usage_key = validate_authorizer_result(result)
        except AuthorizerConfigurationError as error:
            self.log(f"local: authorizer {spec.name} answered badly: {error}")
            raise _Refused("AUTHORIZER_CONFIGURATION_ERROR") from None
        return _Cached(now + spec.ttl_seconds, principal_id, policy, context, usage_key)

    # -- integration -------------------------------------------------------------------------------

    def _integrate(self, route: Route, event: dict[str, Any], request: HttpRequest, request_id: str) -> HttpResponse:
        try:
            result = self.functions.invoke(route.function_id, event, request_id)
        except FileNotFoundError as error:  # a route whose handler is not written yet
            self.log(f"local: {error}")
            return self._internal_error(request, request_id, route)
        except Exception:
            self.log(f"local: {route.function_id} failed on {route.method} {route.path}\n" + traceback.format_exc())
            return self._internal_error(request, request_id, route)
        try:
            return self._proxy_response(result, request_id, event)
        except ValueError as error:
            self.log(f"local: {route.function_id} returned a malformed proxy response: {error}")
            return self._internal_error(request, request_id, route)

    def _internal_error(self, request: HttpRequest, request_id: str, route: Route) -> HttpResponse:
        # What API Gateway answers when the Lambda fails or its answer is not a proxy response.
        return self.gateway_response(
            "DEFAULT_5XX",
            request_id,
            request,
            message="Internal server error",
            status=502,
            resource_path=route.path,
        )

    def _proxy_response(self, result: Any, request_id: str, event: Mapping[str, Any]) -> HttpResponse:
        if not isinstance(result, Mapping):
            raise ValueError(f"result is {type(result).__name__}, not an object")
        status = result.get("statusCode")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError(f"statusCode {status!r}")
        body = result.get("body")
        if body is not None and not isinstance(body, str):
            raise ValueError(f"body is {type(body).__name__}, not a string")
        payload = b""
        if body:
            payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(multi, Mapping):
            raise ValueError("multiValueHeaders is not an object")
        seen = set()
        for name, values in multi.items():
            for value in _as_list(values):
                headers.append((str(name), _header_text(value)))
            seen.add(str(name).lower())
        single = result.get("headers") or {}
        if not isinstance(single, Mapping):
            raise ValueError("headers is not an object")
        for name, value in single.items():
            if str(name).lower() not in seen:
                headers.append((str(name), _header_text(value)))
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names:
            headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-RequestId", request_id))
        headers.append(("x-amz-apigw-id", str(event["requestContext"].get("extendedRequestId", ""))))
        headers.append(("X-Amzn-Trace-Id", f"Root=1-{int(self.now()):08x}-{uuid.uuid4().hex[:24]}"))
        return HttpResponse(status, headers, payload)


def redacted_query(query_string: str) -> str:
    """`?name=…` for each parameter: query strings may carry credentials (`?token=hgr_...`), never logged."""
    names = [name for name, _ in parse_qsl(query_string, keep_blank_values=True)]
    return ("?" + "&".join(f"{name}=…" for name in names)) if names else ""


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------------
# HTTP server


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle holds the body back until the
    # client's delayed ACK (~40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True
    server_version = "HangarLocal"
    sys_version = ""
    server: GatewayServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET
    # Methods no route has still reach the gateway, which answers them as API Gateway does (its
    # MISSING_AUTHENTICATION_TOKEN response), rather than http.server's 501.
    do_TRACE = do_CONNECT = do_QUERY = do_GET

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over the limit (the connection is then closed)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        started = time.monotonic()
        raw_path, _, query = self.path.partition("?")
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        request = HttpRequest(
            method=self.command.upper(),
            raw_path=raw_path or "/",
            query_string=query,
            headers=list(self.headers.items()),
            source_ip=self.client_address[0],
            host=self.headers.get("Host") or self.server.url.removeprefix("http://"),
        )
        try:
            body = self._read_body()
        except ValueError:
            body = None
            self.close_connection = True
            response = json_response(400, {"message": "Malformed request body"})
        else:
            if body is None:
                self.close_connection = True
                response = self.server.gateway.gateway_response("REQUEST_TOO_LARGE", str(uuid.uuid4()), request)
            else:
                request.body = body
                response = self.server.gateway.handle(request)
        self._write(response, head=request.method == "HEAD")
        elapsed = int((time.monotonic() - started) * 1000)
        if self.server.access_log:
            shown = request.raw_path + redacted_query(request.query_string)
            self.server.gateway.log(f"local: {request.method} {shown} -> {response.status} ({elapsed} ms)")

    def _write(self, response: HttpResponse, head: bool) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        self.send_response_only(response.status, reason)
        self.send_header("Date", self.date_time_string())
        for name, value in response.headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding", "date"):
                continue
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the access log line is written by _serve


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP server in front of a `Gateway`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Gateway | None = None, access_log: bool = True) -> None:
        """Binds at once (port 0 picks a free port: see `url`); `gateway` may be set before serving."""
        self._gateway = gateway
        self.access_log = access_log
        super().__init__(address, _RequestHandler)

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            raise RuntimeError("GatewayServer has no gateway yet")
        return self._gateway

    @gateway.setter
    def gateway(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"
