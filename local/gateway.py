"""API Gateway (REST API, Lambda proxy integration) for the local stack, built from template.yaml.

`Gateway.handle(request)` does what API Gateway does with one request:

1. routing (`local.routing`): no route is 404 MISSING_AUTHENTICATION_TOKEN (as the template maps it);
2. the rate-limit hook (`local.limits`) before the authorizer: where WAF sits;
3. the route's Lambda authorizer and its cache (`local.authorizers`);
4. the rate-limit hook after the authorizer, with the usage identifier key it returned;
5. the integration: the function gets the REST v1 proxy event and its answer becomes the HTTP response
   (an exception or a malformed answer is 502, as in API Gateway).

When the gateway itself refuses, the status, headers and body come from the template's
GatewayResponses (falling back to its DEFAULT_4XX / DEFAULT_5XX, then to API Gateway's defaults).
Every response carries `x-amzn-RequestId`. Time is `hangar.core.clock.now()` (moved by `POST /_local/clock`).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from hangar.core import clock

from local.authorizers import Authorizers, Invoker
from local.limits import AllowAll, LimitPolicy
from local.outcomes import Grant, Refusal, RequestInfo
from local.routing import Match, Router
from local.template import (
    ACCOUNT_ID,
    LOCAL_API_ID,
    REGION,
    ApiSettings,
    AuthorizerSpec,
    CorsSpec,
    GatewayResponseSpec,
    Route,
)

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit; larger requests are refused before their body is read."""


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
        return next((value for key, value in reversed(self.headers) if key.lower() == name.lower()), None)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    response_type: str | None = None  # set when the gateway answered itself (for the request log)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


def json_response(status: int, data: Any, request_id: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json")] + ([("x-amzn-RequestId", request_id)] if request_id else [])
    return HttpResponse(status, headers, json.dumps(data, default=str).encode())


# API Gateway's own gateway responses: (status, $context.error.message, x-amzn-ErrorType).
DEFAULT_GATEWAY_RESPONSES: dict[str, tuple[int, str | None, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized", "UnauthorizedException"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource", "AccessDeniedException"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token", "MissingAuthenticationTokenException"),
    "INVALID_API_KEY": (403, "Forbidden", "ForbiddenException"),
    "THROTTLED": (429, "Too Many Requests", "TooManyRequestsException"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded", "LimitExceededException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLongException"),
    "AUTHORIZER_FAILURE": (500, None, "AuthorizerFailureException"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, None, "AuthorizerConfigurationException"),
    "DEFAULT_4XX": (400, "Bad Request", "BadRequestException"),
    "DEFAULT_5XX": (500, "Internal server error", "InternalServerErrorException"),
}  # fmt: skip
# requestContext.identity fields a Lambda proxy event carries that have no local value (IAM, Cognito).
_UNKNOWN_IDENTITY = (
    "cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "principalOrgId", "accessKey",
    "cognitoAuthenticationType", "cognitoAuthenticationProvider", "userArn", "user", "apiKey", "apiKeyId",
)  # fmt: skip
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """A gateway response template: `$context.x.y` replaced from `variables` ("x.y"), unknown ones empty
    (simple substitution, no VTL and no escaping, as API Gateway does)."""
    return _CONTEXT_VARIABLE.sub(lambda m: str(variables.get(m.group(1), "")), text)


def _extended_request_id() -> str:
    return base64.b64encode(secrets.token_bytes(10)).decode()[:14].replace("/", "x").replace("+", "y") + "="


class Gateway:
    """API Gateway for the template's REST API: routes, authorizers, limits, gateway responses."""

    def __init__(
        self,
        routes: Iterable[Route],
        authorizers: Mapping[str, AuthorizerSpec],
        gateway_responses: Mapping[str, GatewayResponseSpec],
        functions: Invoker,
        api: ApiSettings | None = None,
        limit_policy: LimitPolicy | None = None,
        now: Callable[[], float] = clock.now,
        advance_clock: Callable[[float], None] = clock.advance,
        log: Callable[[str], None] = print,
    ) -> None:
        self.routes = list(routes)
        self.router = Router(self.routes)
        self.gateway_responses = dict(gateway_responses)
        self.functions = functions
        self.api = api or ApiSettings(logical_id=None)
        self.limit_policy: LimitPolicy = limit_policy or AllowAll()
        self.now = now
        self.advance_clock = advance_clock
        self.log = log
        self.authorizers = Authorizers(authorizers, functions, now, log)

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The response API Gateway gives `request`."""
        request_id = str(uuid.uuid4())
        try:
            match = self.router.match(request.method, request.raw_path)
            methods = self.router.methods(request.raw_path) if match is None and request.method == "OPTIONS" else set()
            if methods and self.api.cors:
                return self.preflight(self.api.cors, methods, request_id)
            if match is None:
                return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id, request)
            return self._route(request, match, request_id)
        except Exception:
            self.log(f"local: gateway error\n{traceback.format_exc()}")
            return self.gateway_response("DEFAULT_5XX", request_id, request)

    def _route(self, request: HttpRequest, match: Match, request_id: str) -> HttpResponse:
        route, now = match.route, self.now()
        event = self._event(request, match, request_id, now)
        info = RequestInfo(request.method, request.raw_path, event["headers"] or {}, {}, request.source_ip, now)
        refusal = self.limit_policy.before_authorizer(info, route)
        grant: Grant | None = None
        started = time.monotonic()
        if refusal is None and route.authorizer:
            answer = self.authorizers.authorize(route, event, self.method_arn(request), request_id)
            grant, refusal = (None, answer) if isinstance(answer, Refusal) else (answer, None)
        refusal = refusal or self.limit_policy.after_authorizer(info, route, grant)
        if refusal is not None:
            return self._refusal(refusal, request, request_id, route)
        if grant is not None:
            context = event["requestContext"]
            context["authorizer"] = {
                **grant.context,
                "principalId": grant.principal_id,
                "integrationLatency": int((time.monotonic() - started) * 1000),
            }
            if grant.usage_identifier_key and route.api_key_required:
                context["identity"]["apiKey"] = grant.usage_identifier_key
        return self._integrate(route, event, request, request_id)

    def preflight(self, cors: CorsSpec, methods: set[str], request_id: str) -> HttpResponse:
        """What SAM's OPTIONS mock integration answers on a path (the template's Cors): 200 with the one
        allowed origin whatever the request's Origin (a browser refuses a preflight naming another)."""
        headers = [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", cors.allow_origin)]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        headers.append(("Access-Control-Allow-Methods", ",".join(sorted({*methods, "OPTIONS"}))))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        return HttpResponse(200, [*headers, ("x-amzn-RequestId", request_id)], b"{}", "CORS_PREFLIGHT")

    # -- gateway responses ---------------------------------------------------------------------------

    def gateway_response(
        self,
        response_type: str,
        request_id: str,
        request: HttpRequest | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        resource_path: str = "",
        authorizer_context: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """The template's gateway response of that type (or its DEFAULT_4XX/5XX, or API Gateway's own)."""
        default_status, message, error_type = DEFAULT_GATEWAY_RESPONSES.get(
            response_type, DEFAULT_GATEWAY_RESPONSES["DEFAULT_4XX"]
        )
        own = self.gateway_responses.get(response_type)
        family = self.gateway_responses.get("DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX")
        templates = (own.templates if own else None) or (family.templates if family else None) or {}
        variables = {
            "requestId": request_id,
            "extendedRequestId": _extended_request_id(),
            "error.message": "null" if message is None else message,
            "error.messageString": json.dumps(message),
            "error.responseType": response_type,
            "stage": self.api.stage,
            "apiId": LOCAL_API_ID,
            "accountId": ACCOUNT_ID,
            "httpMethod": request.method if request else "",
            "path": f"/{self.api.stage}{request.raw_path}" if request else "",
            "resourcePath": resource_path,
            "identity.sourceIp": request.source_ip if request else "",
            **{f"authorizer.{key}": value for key, value in (authorizer_context or {}).items()},
        }

        def render(text: str) -> str:
            return render_template(text, variables)

        content_type = "application/json" if "application/json" in templates or not templates else next(iter(templates))
        body = render(templates.get(content_type, '{"message":$context.error.messageString}'))
        merged = {"content-type": ("Content-Type", content_type)}
        for name, value in {**(family.headers if family else {}), **(own.headers if own else {})}.items():
            merged[name.lower()] = (name, render(value))
        for name, value in (headers or {}).items():  # the caller's (a limit's Retry-After) win
            merged[name.lower()] = (name, value)
        out = [*merged.values(), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error_type)]
        final_status = status or (own.status if own and own.status else default_status)
        return HttpResponse(final_status, out, body.encode(), response_type)

    def _refusal(self, refusal: Refusal, request: HttpRequest, request_id: str, route: Route) -> HttpResponse:
        if refusal.body is not None:  # a WAF custom response
            headers = [("Content-Type", "application/json"), *refusal.headers.items(), ("x-amzn-RequestId", request_id)]
            return HttpResponse(refusal.status or 429, headers, refusal.body.encode(), "WAF")
        return self.gateway_response(
            refusal.response_type,
            request_id,
            request,
            status=refusal.status,
            headers=refusal.headers,
            resource_path=route.path,
            authorizer_context=refusal.authorizer_context,
        )

    # -- the proxy event -----------------------------------------------------------------------------

    def method_arn(self, request: HttpRequest) -> str:
        path = request.raw_path.lstrip("/")
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{LOCAL_API_ID}/{self.api.stage}/{request.method}/{path}"

    def _event(self, request: HttpRequest, match: Match, request_id: str, now: float) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        forwarded = [
            ("X-Forwarded-For", request.source_ip),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", request.host.rpartition(":")[2] or "80"),
        ]
        present = {name.lower() for name, _ in request.headers}
        for name, value in [*request.headers, *((n, v) for n, v in forwarded if n.lower() not in present)]:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query_string, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        route = match.route
        return {
            "resource": route.path,
            "path": request.raw_path,  # as sent: REST APIs keep the percent-encoding (pathParameters decode)
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": match.path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": route.path.strip("/").replace("/", "-")[:10] or "root",
                "resourcePath": route.path,
                "httpMethod": request.method,
                "extendedRequestId": _extended_request_id(),
                "requestTime": datetime.fromtimestamp(now, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.api.stage}{request.raw_path}",
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": self.api.stage,
                "domainPrefix": request.host.split(":")[0].split(".")[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    **dict.fromkeys(_UNKNOWN_IDENTITY),
                    "sourceIp": request.source_ip,
                    "userAgent": request.header("user-agent"),
                },
                "domainName": request.host,
                "apiId": LOCAL_API_ID,
            },
            "body": request.body.decode("utf-8", errors="replace") if request.body else None,
            "isBase64Encoded": False,
        }

    # -- the integration -----------------------------------------------------------------------------

    def _integrate(self, route: Route, event: dict[str, Any], request: HttpRequest, request_id: str) -> HttpResponse:
        try:
            return self._proxy_response(self.functions.invoke(route.function_id, event, request_id), request_id, event)
        except Exception:
            self.log(f"local: {route.function_id} failed on {route.method} {route.path}\n{traceback.format_exc()}")
            # What API Gateway answers when the Lambda fails or its answer is not a proxy response.
            return self.gateway_response("DEFAULT_5XX", request_id, request, status=502, resource_path=route.path)

    def _proxy_response(self, result: Any, request_id: str, event: Mapping[str, Any]) -> HttpResponse:
        if not isinstance(result, Mapping):
            raise ValueError(f"the function answered {type(result).__name__}, not a proxy response")
        status = result.get("statusCode")
        status = int(status) if isinstance(status, str) and status.isdigit() else status
        body = result.get("body")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError(f"statusCode {status!r}")
        if body is not None and not isinstance(body, str):
            raise ValueError(f"body is {type(body).__name__}, not a string")
        payload = (base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()) if body else b""
        headers: list[tuple[str, str]] = []
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), _header_text(value)) for value in values)
        seen = {name.lower() for name, _ in headers}
        headers.extend(
            (str(n), _header_text(v)) for n, v in (result.get("headers") or {}).items() if n.lower() not in seen
        )
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers += [
            ("x-amzn-RequestId", request_id),
            ("x-amz-apigw-id", str(event["requestContext"]["extendedRequestId"])),
            ("X-Amzn-Trace-Id", f"Root=1-{int(self.now()):08x}-{uuid.uuid4().hex[:24]}"),
        ]
        return HttpResponse(status, headers, payload)


def _header_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
