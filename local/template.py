"""template.yaml, read the way SAM and CloudFormation would for a local stack: functions, routes,
authorizers, gateway responses, schedules, tables and the functions' environment.

Only what template.yaml uses is understood. Anything else that would change how the stack behaves (a
TOKEN authorizer, CORS, binary media types, a greedy route, an intrinsic function not used today, ...)
raises `NotSupportedLocally`, so a new template feature fails loudly at start-up instead of being
silently ignored. Table names are `<HANGAR_TABLE_PREFIX><LogicalId>` (no prefix by default).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local import REPO_ROOT

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "hangar-local"
LOCAL_API_ID = "local"
FUNCTION_TYPE = "AWS::Serverless::Function"
API_TYPE = "AWS::Serverless::Api"
TABLE_TYPE = "AWS::DynamoDB::Table"
BUCKET_TYPE = "AWS::S3::Bucket"
PARAMETER_ENV_PREFIX = "HANGAR_PARAM_"


class NotSupportedLocally(Exception):
    """A template feature local/ does not emulate: add it to local/ (and its tests) before using it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not supported by local/ (teach local/ before the template uses it)")


class Unresolvable(Exception):
    """A value with no local equivalent (e.g. `!GetAtt Queue.Arn`): the setting using it is left unset."""


class _NoValue(Exception):
    """`!Ref AWS::NoValue`: the enclosing property is dropped."""


# -- loading -----------------------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """The template as plain data; short-form tags become their long form ({"Ref": x}, {"Fn::Sub": s})."""
    source = Path(path or REPO_ROOT / "template.yaml")
    data = yaml.load(source.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - SafeLoader
    if not isinstance(data, dict):
        raise ValueError(f"{source}: not a template (top level is not a mapping)")
    return data


def resources(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for resources of the given types (all when none given)."""
    return {
        str(logical_id): resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict) and (not types or resource.get("Type") in types)
    }


def table_prefix() -> str:
    """HANGAR_TABLE_PREFIX: lets several local stacks share one DynamoDB (each e2e server has its own)."""
    return os.environ.get("HANGAR_TABLE_PREFIX", "")


def local_table_name(logical_id: str) -> str:
    """What `!Ref Table` is locally: the table's logical id, after HANGAR_TABLE_PREFIX."""
    return table_prefix() + logical_id


def local_bucket_name(logical_id: str) -> str:
    """What `!Ref Bucket` is locally (S3 names are lower case): hangar-local-artifactsbucket. Buckets are
    always in the embedded backend, one per local stack, so they need no prefix."""
    return f"{STACK_NAME}-{logical_id.lower()}"


def parameter_overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`HANGAR_PARAM_AgentPackageSpec=./agent` overrides that template parameter, as
    `sam deploy --parameter-overrides` would."""
    environ = os.environ if environ is None else environ
    return {k.removeprefix(PARAMETER_ENV_PREFIX): v for k, v in environ.items() if k.startswith(PARAMETER_ENV_PREFIX)}


# -- intrinsic functions -------------------------------------------------------------------------------

_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_RE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """The intrinsic functions template.yaml uses (Ref, GetAtt, Sub, If, Equals, Not), evaluated against
    parameter defaults (or HANGAR_PARAM_* overrides) and what provisioning created (`refs`, `attrs`)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        refs: Mapping[str, str] | None = None,
        attrs: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.template = template
        self.refs = dict(refs or {})
        self.attrs = dict(attrs or {})
        self.parameters = parameter_overrides_from_env()
        self._resources = resources(template)

    def ref(self, name: str) -> Any:
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        parameter = (self.template.get("Parameters") or {}).get(name)
        if parameter is not None:
            if "Default" not in parameter:
                raise Unresolvable(f"parameter {name} has no Default")
            return parameter["Default"]
        if name in self.refs:
            return self.refs[name]
        api_name, dot, attribute = name.partition(".")
        if dot and self._type(api_name) == API_TYPE:  # SAM's `!Ref Api.Stage`
            return self.get_att(api_name, attribute)
        kind = self._type(name)
        if kind == TABLE_TYPE:
            return local_table_name(name)
        if kind == BUCKET_TYPE:
            return local_bucket_name(name)
        if kind == FUNCTION_TYPE:
            return name
        if kind == API_TYPE:
            return LOCAL_API_ID
        raise Unresolvable(f"{name} ({kind}) has no local value")

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attrs:
            return self.attrs[(name, attribute)]
        kind = self._type(name)
        if kind == TABLE_TYPE and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{local_table_name(name)}"
        if kind == BUCKET_TYPE and attribute == "Arn":
            return f"arn:aws:s3:::{local_bucket_name(name)}"
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        if kind == API_TYPE and attribute == "Stage":
            return str(self.resolve(self._resources[name].get("Properties", {}).get("StageName", "prod")))
        raise Unresolvable(f"{name}.{attribute} has no local value")

    def _type(self, name: str) -> str | None:
        return (self._resources.get(name) or {}).get("Type")

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise Unresolvable(f"no condition named {name}")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated; Unresolvable when one has no local value."""
        if isinstance(value, list):
            out = []
            for item in value:
                try:
                    out.append(self.resolve(item))
                except _NoValue:
                    continue
            return out
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    raise _NoValue()
                return self.ref(str(arg))
            if key == "Condition":
                return self.condition(str(arg))
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out_map = {}
        for key, item in value.items():
            try:
                out_map[key] = self.resolve(item)
            except _NoValue:
                continue
        return out_map

    def try_resolve(self, value: Any, default: Any = None) -> Any:
        """`resolve`, or `default` for a value with no local equivalent (never for an unsupported feature)."""
        try:
            return self.resolve(value)
        except (Unresolvable, _NoValue):
            return default

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(str(logical_id), str(attribute))
        if name == "Sub":
            if not isinstance(arg, str):
                raise NotSupportedLocally("Fn::Sub with a variable map")
            return _SUB_RE.sub(lambda match: self._substitute(match.group(1)), arg)
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(condition)) else when_false)
        if name == "Equals":
            left, right = (self.resolve(item) for item in arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg[0])
        raise NotSupportedLocally(f"Fn::{name}")

    def _substitute(self, expression: str) -> str:
        if expression.startswith("!"):
            return "${" + expression[1:] + "}"
        if "." in expression and not expression.startswith("AWS::"):
            logical_id, attribute = expression.split(".", 1)
            return as_env_value(self.get_att(logical_id, attribute))
        return as_env_value(self.ref(expression))


def as_env_value(value: Any) -> str:
    """A resolved value as an environment variable (booleans as CloudFormation writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -- functions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function: where its handler lives and how it is configured."""

    logical_id: str
    code_dir: Path
    handler: str  # e.g. "create_runner.handler"
    timeout: int = 3
    memory_size: int = 128
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def module_file(self) -> Path:
        """functions/runners/create_runner.py for `create_runner.handler` under functions/runners/."""
        return self.code_dir / (self.handler.rpartition(".")[0].replace(".", "/") + ".py")

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def _globals(template: Mapping[str, Any], section: str) -> dict[str, Any]:
    return dict((template.get("Globals") or {}).get(section) or {})


def function_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties with Globals.Function merged in (the function's own values win)."""
    merged = _globals(template, "Function")
    own = dict(resources(template)[logical_id].get("Properties") or {})
    env_global = (merged.get("Environment") or {}).get("Variables") or {}
    merged.update(own)
    env_own = (own.get("Environment") or {}).get("Variables") or {}
    if env_global or env_own:
        merged["Environment"] = {"Variables": {**env_global, **env_own}}
    return merged


def functions(template: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, its CodeUri relative to `base_dir` (the template's directory)."""
    resolver = Resolver(template)
    found: dict[str, FunctionSpec] = {}
    for logical_id in resources(template, FUNCTION_TYPE):
        properties = function_properties(template, logical_id)
        code_uri, handler = resolver.resolve(properties.get("CodeUri")), resolver.resolve(properties.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise NotSupportedLocally(f"{logical_id}: a function without a local CodeUri directory and Handler")
        found[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=((base_dir or REPO_ROOT) / code_uri).resolve(),
            handler=handler,
            timeout=int(resolver.resolve(properties.get("Timeout", 3))),
            memory_size=int(resolver.resolve(properties.get("MemorySize", 128))),
            properties=properties,
        )
    return found


def function_environment(template: Mapping[str, Any], resolver: Resolver | None = None) -> dict[str, str]:
    """The functions' merged environment (Globals, then each function's own), resolved. They share one
    process locally: a variable two functions set differently is reported and the later value kept."""
    resolver = resolver or Resolver(template)
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for logical_id in resources(template, FUNCTION_TYPE):
        variables = (function_properties(template, logical_id).get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            try:
                resolved = as_env_value(resolver.resolve(value))
            except (Unresolvable, _NoValue):
                continue
            if name in merged and merged[name] != resolved:
                print(
                    f"local: {name} differs in {origin[name]} and {logical_id}; using {logical_id}'s", file=sys.stderr
                )
            merged[str(name)], origin[str(name)] = resolved, logical_id
    return merged


# -- the API: settings, routes, authorizers, gateway responses -----------------------------------------

# Only `false` is emulated: the preflight (local.gateway.Gateway.preflight) runs no authorizer, needs no key.
_CORS_PREFLIGHT_AUTH = ("AddDefaultAuthorizerToCorsPreflight", "AddApiKeyRequiredToCorsPreflight")
_CORS_PROPERTIES = {"AllowOrigin", "AllowHeaders", "AllowMethods", "MaxAge"}
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
    """The API's Cors: what SAM's OPTIONS mock on every path answers (values unquoted). `allow_methods`
    None: each path's own methods and OPTIONS, as SAM computes them."""

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None
    max_age: str | None = None


def _string_expression(value: Any, what: str) -> str:
    """A header value as API Gateway maps it: a quoted literal ('text'); anything else is not emulated."""
    text = str(value)
    if not (len(text) >= 2 and text[0] == text[-1] == "'"):
        raise NotSupportedLocally(f"{what} from {text}")
    return text[1:-1]


def _cors(template: Mapping[str, Any], properties: Mapping[str, Any], auth: Mapping[str, Any]) -> CorsSpec | None:
    """The API's Cors, resolved; None when there is none, or when its origin has no local value (the
    console's CloudFront domain: locally the console is served from the API's own origin)."""
    cors = properties.get("Cors")
    if cors is None:
        return None
    if not isinstance(cors, dict) or set(cors) - _CORS_PROPERTIES:
        raise NotSupportedLocally(f"the API's Cors {cors!r} (only {', '.join(sorted(_CORS_PROPERTIES))})")
    for name in _CORS_PREFLIGHT_AUTH:
        if auth.get(name, True) is not False:
            raise NotSupportedLocally(f"the API's Auth.{name} other than false")
    resolved = Resolver(template).try_resolve(cors)
    if not resolved or "AllowOrigin" not in resolved:
        return None
    values = {key: _string_expression(value, f"Cors.{key}") for key, value in resolved.items()}
    return CorsSpec(values["AllowOrigin"], values.get("AllowHeaders"), values.get("AllowMethods"), values.get("MaxAge"))


def api_settings(template: Mapping[str, Any]) -> ApiSettings:
    apis = resources(template, API_TYPE)
    if len(apis) > 1:
        raise NotSupportedLocally("more than one AWS::Serverless::Api")
    logical_id = next(iter(apis), None)
    properties = {**_globals(template, "Api"), **((apis[logical_id].get("Properties") or {}) if logical_id else {})}
    for unknown in sorted(set(properties) - _API_PROPERTIES):
        raise NotSupportedLocally(f"the API property {unknown}")
    auth = properties.get("Auth") or {}
    for unknown in sorted(set(auth) - _AUTH_PROPERTIES):
        raise NotSupportedLocally(f"the API's Auth.{unknown}")
    resolver = Resolver(template)
    default_authorizer = auth.get("DefaultAuthorizer")
    return ApiSettings(
        logical_id=logical_id,
        stage=str(resolver.resolve(properties.get("StageName", "prod"))),
        default_authorizer=None if default_authorizer in (None, "NONE") else str(default_authorizer),
        api_key_required=bool(auth.get("ApiKeyRequired", False)),
        api_key_source=str(properties.get("ApiKeySourceType", "HEADER")),
        cors=_cors(template, properties, auth),
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
                raise NotSupportedLocally(f"{logical_id}.{event_name}: the Api event property {unknown}")
            auth = properties.get("Auth") or {}
            method, path = str(properties["Method"]).upper(), "/" + str(properties["Path"]).strip("/")
            if method not in _HTTP_METHODS or "+}" in path:
                raise NotSupportedLocally(f"{logical_id}: {method} {path} (ANY and greedy {{proxy+}} routes)")
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
            raise NotSupportedLocally(f"authorizer {name}: only REQUEST Lambda authorizers (FunctionArn: !GetAtt)")
        identity = definition.get("Identity") or {}
        for unknown in sorted(set(identity) - {"Headers", "QueryStrings", "ReauthorizeEvery"}):
            raise NotSupportedLocally(f"authorizer {name}: Identity.{unknown}")
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
                headers[str(name)] = _string_expression(resolved, f"gateway response {response_type}: header {name}")
        status = definition.get("StatusCode")
        found[str(response_type)] = GatewayResponseSpec(
            response_type=str(response_type),
            status=int(status) if status else None,
            templates={str(k): str(v) for k, v in (definition.get("ResponseTemplates") or {}).items()},
            headers=headers,
        )
    return found


# -- schedules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A `Type: Schedule` event: run `function_id` at `expression` (rate(...) or cron(...))."""

    function_id: str
    event_name: str
    expression: str
    enabled: bool = True

    @property
    def rule_arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{STACK_NAME}-{self.function_id}{self.event_name}"


_SCHEDULE_PROPERTIES = {"Schedule", "Enabled", "State", "Description", "DeadLetterConfig", "RetryPolicy", "Name"}


def schedules(template: Mapping[str, Any]) -> list[ScheduleSpec]:
    """Every schedule event of every function (dead-letter and retry settings have no local meaning)."""
    found: list[ScheduleSpec] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        for event_name, event in (function_properties(template, logical_id).get("Events") or {}).items():
            if event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            properties = event.get("Properties") or {}
            unknown = sorted(set(properties) - _SCHEDULE_PROPERTIES)
            if event["Type"] != "Schedule" or unknown:
                raise NotSupportedLocally(f"{logical_id}.{event_name}: {event['Type']} {' '.join(unknown)}".strip())
            enabled = bool(properties.get("Enabled", True)) and properties.get("State", "ENABLED") == "ENABLED"
            found.append(ScheduleSpec(logical_id, str(event_name), str(properties["Schedule"]), enabled))
    return found


# -- event source mappings (DynamoDB streams, SQS queues) -----------------------------------------------


@dataclass(frozen=True)
class EventSourceSpec:
    """A `Type: DynamoDB` or `Type: SQS` event: Lambda polls `source` (a table's stream, or a queue; its
    logical id) and invokes `function_id` with batches of at most `batch_size` records."""

    function_id: str
    event_name: str
    kind: str  # "DynamoDB" or "SQS"
    source: str
    batch_size: int
    filters: tuple[Mapping[str, Any], ...] = ()
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # DynamoDB: -1 retries until the record expires


_EVENT_SOURCE_PROPERTIES = {
    "DynamoDB": {
        "Stream", "StartingPosition", "BatchSize", "FilterCriteria", "FunctionResponseTypes", "MaximumRetryAttempts",
        # AWS's ways to shape and park batches, with no local meaning: one process polls every source in
        # order, and a batch that keeps failing after its retries is printed instead of parked.
        "MaximumBatchingWindowInSeconds", "BisectBatchOnFunctionError", "DestinationConfig",
    },
    "SQS": {"Queue", "BatchSize", "FunctionResponseTypes"},
}  # fmt: skip
_SOURCE_ATTRIBUTE = {"DynamoDB": ("Stream", "StreamArn"), "SQS": ("Queue", "Arn")}


def event_sources(template: Mapping[str, Any]) -> list[EventSourceSpec]:
    """Every DynamoDB stream and SQS queue event of every function."""
    found: list[EventSourceSpec] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        for event_name, event in (function_properties(template, logical_id).get("Events") or {}).items():
            kind = event.get("Type")
            if kind not in _EVENT_SOURCE_PROPERTIES:
                continue
            properties = event.get("Properties") or {}
            unknown = sorted(set(properties) - _EVENT_SOURCE_PROPERTIES[kind])
            if unknown:
                raise NotSupportedLocally(f"{logical_id}.{event_name}: the {kind} event property {' '.join(unknown)}")
            name, attribute = _SOURCE_ATTRIBUTE[kind]
            reference = (properties.get(name) or {}).get("Fn::GetAtt")
            if not reference or reference[1] != attribute:
                raise NotSupportedLocally(
                    f"{logical_id}.{event_name}: {name} other than !GetAtt <resource>.{attribute}"
                )
            if kind == "DynamoDB" and properties.get("StartingPosition") != "TRIM_HORIZON":
                raise NotSupportedLocally(f"{logical_id}.{event_name}: StartingPosition other than TRIM_HORIZON")
            filters = tuple(
                json.loads(entry["Pattern"]) for entry in (properties.get("FilterCriteria") or {}).get("Filters") or ()
            )
            found.append(
                EventSourceSpec(
                    function_id=logical_id,
                    event_name=str(event_name),
                    kind=str(kind),
                    source=str(reference[0]),
                    batch_size=int(properties.get("BatchSize", 100 if kind == "DynamoDB" else 10)),
                    filters=filters,
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or ()),
                    maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                )
            )
    return found


# -- tables ------------------------------------------------------------------------------------------------

_TABLE_PROPERTIES = {
    # Sent to CreateTable:
    "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode", "TimeToLiveSpecification",
    "StreamSpecification",
    # No behaviour a local caller could see:
    "PointInTimeRecoverySpecification", "SSESpecification", "Tags", "DeletionProtectionEnabled", "TableName",
    "ContributorInsightsSpecification",
}  # fmt: skip


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> CreateTable arguments (on demand), plus `TimeToLiveAttribute` when TTL is on."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources(template, TABLE_TYPE).items():
        properties = Resolver(template).resolve(resource.get("Properties") or {})
        for unknown in sorted(set(properties) - _TABLE_PROPERTIES):
            raise NotSupportedLocally(f"{logical_id}: the table property {unknown}")
        arguments: dict[str, Any] = {
            "TableName": local_table_name(logical_id),
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        stream = properties.get("StreamSpecification") or {}
        if stream:
            arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        ttl = properties.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            arguments["TimeToLiveAttribute"] = ttl["AttributeName"]
        found[logical_id] = arguments
    return found


def create_tables(dynamodb_client: Any, template: Mapping[str, Any]) -> list[str]:
    """The template's tables, created where missing (see `local.provision.ensure_tables`)."""
    from local.provision import ensure_tables

    return ensure_tables(dynamodb_client, template)
