"""The template's REST API: its settings and CORS, routes, authorizers and gateway responses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template.function_specs import function_properties, globals_of
from local.template.intrinsics import Resolver
from local.template.reading import API_TYPE, FUNCTION_TYPE, NotSupportedLocally, in_resource, resources

# Only `false` is emulated: the preflight (local.gateway.Gateway.preflight) runs no authorizer, needs no key.
_CORS_PREFLIGHT_AUTH = ("AddDefaultAuthorizerToCorsPreflight", "AddApiKeyRequiredToCorsPreflight")
_CORS_PROPERTIES = {"AllowOrigin", "AllowHeaders", "MaxAge"}
_API_PROPERTIES = {
    # Read by local/ (routes, authorizers, gateway responses, stage, CORS preflight):
    "StageName", "Auth", "GatewayResponses", "ApiKeySourceType", "Cors",
    # No behaviour a local caller could see:
    "Name", "TracingEnabled", "AccessLogSetting", "MethodSettings", "Description", "Tags", "OpenApiVersion",
}  # fmt: skip
_AUTH_PROPERTIES = {"DefaultAuthorizer", "ApiKeyRequired", "Authorizers", *_CORS_PREFLIGHT_AUTH}


@dataclass(frozen=True)
class ApiSettings:
    """The template's AWS::Serverless::Api (Globals.Api merged in)."""

    logical_id: str | None
    stage: str = "prod"
    default_authorizer: str | None = None
    api_key_required: bool = False
    api_key_source: str = "HEADER"
    cors: CorsSpec | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class CorsSpec:
    """The API's Cors: what SAM's OPTIONS mock on every path answers (values unquoted); the allowed
    methods are each path's own and OPTIONS, as SAM computes them without AllowMethods."""

    allow_origin: str
    allow_headers: str | None = None
    max_age: str | None = None


def _string_expression(value: Any, what: str, resource: str | None) -> str:
    """A header value as API Gateway maps it: a quoted literal ('text'); anything else is not emulated."""
    text = str(value)
    if not (len(text) >= 2 and text[0] == text[-1] == "'"):
        raise NotSupportedLocally(f"{what} from {text}", resource)
    return text[1:-1]


def _cors(
    template: Mapping[str, Any], api: str | None, properties: Mapping[str, Any], auth: Mapping[str, Any]
) -> CorsSpec | None:
    """The API's Cors, resolved; None when there is none, or when its origin has no local value (the
    console's CloudFront domain: locally the console is served from the API's own origin)."""
    cors = properties.get("Cors")
    if cors is None:
        return None
    if not isinstance(cors, dict):
        raise NotSupportedLocally("Cors as a string (only AllowOrigin, AllowHeaders, MaxAge)", api)
    for unknown in sorted(set(cors) - _CORS_PROPERTIES):
        raise NotSupportedLocally(f"the Cors property {unknown}", api)
    for name in _CORS_PREFLIGHT_AUTH:
        if auth.get(name, True) is not False:
            raise NotSupportedLocally(f"Auth.{name} other than false", api)
    resolved = Resolver(template).try_resolve(cors)
    if not resolved or "AllowOrigin" not in resolved:
        return None
    values = {key: _string_expression(value, f"Cors.{key}", api) for key, value in resolved.items()}
    return CorsSpec(values["AllowOrigin"], values.get("AllowHeaders"), values.get("MaxAge"))


def api_settings(template: Mapping[str, Any]) -> ApiSettings:
    apis = resources(template, API_TYPE)
    if len(apis) > 1:
        raise NotSupportedLocally("more than one AWS::Serverless::Api", ", ".join(apis))
    logical_id = next(iter(apis), None)
    properties = {**globals_of(template, "Api"), **((apis[logical_id].get("Properties") or {}) if logical_id else {})}
    for unknown in sorted(set(properties) - _API_PROPERTIES):
        raise NotSupportedLocally(f"the API property {unknown}", logical_id)
    auth = properties.get("Auth") or {}
    for unknown in sorted(set(auth) - _AUTH_PROPERTIES):
        raise NotSupportedLocally(f"the API property Auth.{unknown}", logical_id)
    default_authorizer = auth.get("DefaultAuthorizer")
    with in_resource(logical_id or "Globals.Api"):
        return ApiSettings(
            logical_id=logical_id,
            stage=str(Resolver(template).resolve(properties.get("StageName", "prod"))),
            default_authorizer=None if default_authorizer in (None, "NONE") else str(default_authorizer),
            api_key_required=bool(auth.get("ApiKeyRequired", False)),
            api_key_source=str(properties.get("ApiKeySourceType", "HEADER")),
            cors=_cors(template, logical_id, properties, auth),
            properties=properties,
        )


@dataclass(frozen=True)
class Route:
    """One `Type: Api` event: METHOD path -> function, behind an authorizer (None: open)."""

    method: str  # upper case
    path: str  # the template path, e.g. /api/runners/{runnerId}
    function_id: str
    event_name: str
    authorizer: str | None
    api_key_required: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.path.strip("/").split("/") if part)


_HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def routes(template: Mapping[str, Any]) -> list[Route]:
    """Every `Type: Api` event of every function, with its effective authorizer and API-key setting."""
    api = api_settings(template)
    found: list[Route] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        for event_name, event in (function_properties(template, logical_id).get("Events") or {}).items():
            if event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            for unknown in sorted(set(properties) - {"RestApiId", "Path", "Method", "Auth"}):
                raise NotSupportedLocally(f"the Api event property {unknown}", f"{logical_id}.{event_name}")
            auth = properties.get("Auth") or {}
            method, path = str(properties["Method"]).upper(), "/" + str(properties["Path"]).strip("/")
            if method not in _HTTP_METHODS:
                raise NotSupportedLocally(f"the method {method} on {path}", f"{logical_id}.{event_name}")
            if "+}" in path:
                raise NotSupportedLocally(f"the greedy path {path}", f"{logical_id}.{event_name}")
            authorizer = auth.get("Authorizer", api.default_authorizer)
            found.append(
                Route(
                    method=method,
                    path=path,
                    function_id=logical_id,
                    event_name=str(event_name),
                    authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                    api_key_required=bool(auth.get("ApiKeyRequired", api.api_key_required)),
                )
            )
    return found


@dataclass(frozen=True)
class AuthorizerSpec:
    """A REQUEST Lambda authorizer of the API and its identity sources (headers, query strings)."""

    name: str
    function_id: str
    headers: tuple[str, ...] = ()
    query_strings: tuple[str, ...] = ()
    ttl_seconds: int = 0  # ReauthorizeEvery; 0: no result cache


def authorizers(template: Mapping[str, Any]) -> dict[str, AuthorizerSpec]:
    """The API's Lambda authorizers by name (Auth.Authorizers)."""
    found: dict[str, AuthorizerSpec] = {}
    for name, definition in ((api_settings(template).properties.get("Auth") or {}).get("Authorizers") or {}).items():
        arn = definition.get("FunctionArn") or {}
        if definition.get("FunctionPayloadType") != "REQUEST" or "Fn::GetAtt" not in arn:
            kind = definition.get("FunctionPayloadType", "TOKEN")
            raise NotSupportedLocally(f"a {kind} authorizer (only REQUEST, FunctionArn: !GetAtt)", f"authorizer {name}")
        identity = definition.get("Identity") or {}
        for unknown in sorted(set(identity) - {"Headers", "QueryStrings", "ReauthorizeEvery"}):
            raise NotSupportedLocally(f"the identity source {unknown}", f"authorizer {name}")
        headers = tuple(str(h) for h in identity.get("Headers") or ())
        query_strings = tuple(str(q) for q in identity.get("QueryStrings") or ())
        # API Gateway's default TTL is 300 s; without identity sources nothing can be cached.
        ttl = int(identity.get("ReauthorizeEvery", 300)) if headers or query_strings else 0
        found[str(name)] = AuthorizerSpec(str(name), str(arn["Fn::GetAtt"][0]), headers, query_strings, ttl)
    return found


@dataclass(frozen=True)
class GatewayResponseSpec:
    """One entry of the API's GatewayResponses (any part may be absent)."""

    response_type: str
    status: int | None = None
    templates: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def gateway_responses(template: Mapping[str, Any]) -> dict[str, GatewayResponseSpec]:
    """The API's GatewayResponses by type (UNAUTHORIZED, ACCESS_DENIED, DEFAULT_4XX, ...)."""
    found: dict[str, GatewayResponseSpec] = {}
    resolver = Resolver(template)
    for response_type, definition in (api_settings(template).properties.get("GatewayResponses") or {}).items():
        headers = {}
        for name, value in ((definition.get("ResponseParameters") or {}).get("Headers") or {}).items():
            resolved = resolver.try_resolve(value)  # no local value (the console's CloudFront origin): no header
            if resolved is not None:
                headers[str(name)] = _string_expression(
                    resolved, f"the header {name}", f"gateway response {response_type}"
                )
        status = definition.get("StatusCode")
        found[str(response_type)] = GatewayResponseSpec(
            response_type=str(response_type),
            status=int(status) if status else None,
            templates={str(k): str(v) for k, v in (definition.get("ResponseTemplates") or {}).items()},
            headers=headers,
        )
    return found
