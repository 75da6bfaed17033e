"""template.yaml, read the way CloudFormation / SAM would for a local stack.

Plain functions, importable by tests and benchmarks:

- `load_template(path)`                      the template as a dict (any `!Tag` accepted)
- `Resolver(template, refs, attrs)`          CloudFormation intrinsic functions against local values
- `functions(template)`                      every AWS::Serverless::Function with its handler file
- `routes(template)`                         every `Type: Api` event: path, method, function, authorizer
- `api_settings(template)`                   the API: stage, default authorizer, CORS, key source
- `authorizers(template)`                    the API's Lambda authorizers and their identity sources
- `gateway_responses(template)`              the API's GatewayResponses
- `schedules(template)`                      every `Type: Schedule` / `ScheduleV2` event
- `table_definitions(template)`, `create_tables(dynamodb_client, template)`
- `provision(template, session)`             tables, KMS keys, secrets, SSM parameters, usage plans, keys
- `function_environment(template, resolver)` Globals + every function's variables, resolved

Table names are `local_table_name(logical_id)`: the logical id itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local import REPO_ROOT

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "hangar-local"
LOCAL_API_ID = "local"
DEFAULT_STAGE = "prod"

FUNCTION_TYPE = "AWS::Serverless::Function"
API_TYPE = "AWS::Serverless::Api"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")


# --------------------------------------------------------------------------------------------------
# Loading


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that accepts CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)."""


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
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def template_path() -> Path:
    """The repository's template.yaml."""
    return REPO_ROOT / "template.yaml"


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """The template as plain data; short-form tags become their long form ({"Ref": x}, {"Fn::Sub": s})."""
    text = Path(path or template_path()).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path or template_path()}: not a template (top level is not a mapping)")
    return data


def resources(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for resources of the given types (all when none given)."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict) and (not types or resource.get("Type") in types):
            found[str(logical_id)] = resource
    return found


def local_bucket_name(logical_id: str) -> str:
    """The local name of a bucket (S3 names are lower case): hangar-local-artifactsbucket."""
    return f"{STACK_NAME}-{logical_id.lower()}"


def local_table_name(logical_id: str) -> str:
    """The local name of a table: its logical id (what `!Ref Table` resolves to locally)."""
    return logical_id


# --------------------------------------------------------------------------------------------------
# Intrinsic functions


class Unresolvable(Exception):
    """A value that has no local equivalent (e.g. `!GetAtt Table.StreamArn`); its setting is left unset."""


_SUB_RE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions against parameter defaults and the local resources' values.

    `refs` maps a logical id to what `!Ref` gives locally (KMS key id, secret ARN, usage plan id, ...);
    `attrs` maps (logical id, attribute) to what `!GetAtt` gives. Tables, functions, the API and
    parameters resolve without being listed.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        refs: Mapping[str, str] | None = None,
        attrs: Mapping[tuple[str, str], str] | None = None,
        parameter_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.refs = dict(refs or {})
        self.attrs = dict(attrs or {})
        self.parameter_overrides = dict(parameter_overrides or {})
        self._resources = resources(template)

    # -- Ref / GetAtt ------------------------------------------------------------------------------

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            raise Unresolvable("AWS::NoValue")
        if name in self.parameter_overrides:
            return self.parameter_overrides[name]
        parameters = self.template.get("Parameters") or {}
        if name in parameters:
            if "Default" not in (parameters[name] or {}):
                raise Unresolvable(f"parameter {name} has no Default")
            return parameters[name]["Default"]
        if name in self.refs:
            return self.refs[name]
        api_name, dot, api_attribute = name.partition(".")
        if dot and (self._resources.get(api_name) or {}).get("Type") == API_TYPE:
            return self.get_att(api_name, api_attribute)  # SAM's `!Ref Api.Stage` / `!Ref Api.Deployment`
        resource = self._resources.get(name)
        if resource is None:
            raise Unresolvable(f"no resource or parameter named {name}")
        kind = resource.get("Type")
        if kind in TABLE_TYPES:
            return local_table_name(name)
        if kind == FUNCTION_TYPE:
            return name
        if kind in (API_TYPE, "AWS::ApiGateway::RestApi"):
            return LOCAL_API_ID
        raise Unresolvable(f"{name} ({kind}) has no local value")

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attrs:
            return self.attrs[(name, attribute)]
        resource = self._resources.get(name)
        kind = resource.get("Type") if resource else None
        if kind in TABLE_TYPES and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{local_table_name(name)}"
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        if kind == API_TYPE and attribute == "Stage":
            stage = (resource or {}).get("Properties", {}).get("StageName", DEFAULT_STAGE)
            return str(self.resolve(stage))
        if kind == API_TYPE and attribute == "Deployment":
            return f"{LOCAL_API_ID}-deployment"
        raise Unresolvable(f"{name}.{attribute} has no local value")

    # -- Conditions --------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise Unresolvable(f"no condition named {name}")
        return bool(self.resolve(conditions[name]))

    # -- Everything --------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated; raises Unresolvable when one cannot be."""
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
                return self.ref(str(self.resolve(arg)))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out_map: dict[str, Any] = {}
        for key, item in value.items():
            try:
                out_map[key] = self.resolve(item)
            except _NoValue:
                continue
        return out_map

    def try_resolve(self, value: Any, default: Any = None) -> Any:
        try:
            return self.resolve(value)
        except (Unresolvable, _NoValue):
            return default

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else list(arg)
            if len(parts) != 2:
                raise Unresolvable(f"bad GetAtt {arg!r}")
            return self.get_att(str(self.resolve(parts[0])), str(self.resolve(parts[1])))
        if name == "Sub":
            return self._sub(arg)
        if name == "Join":
            separator, items = arg
            return str(separator).join(str(self._scalar(item)) for item in self.resolve(items))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            separator, text = arg
            return str(self.resolve(text)).split(str(separator))
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(condition)) else when_false)
        if name == "Equals":
            left, right = (self.resolve(item) for item in arg)
            return str(left) == str(right)
        if name == "Not":
            return not bool(self.resolve(arg[0] if isinstance(arg, list) else arg))
        if name == "And":
            return all(bool(self.resolve(item)) for item in arg)
        if name == "Or":
            return any(bool(self.resolve(item)) for item in arg)
        if name == "FindInMap":
            map_name, first, second = (self.resolve(item) for item in arg[:3])
            try:
                return (self.template.get("Mappings") or {})[map_name][first][second]
            except (KeyError, TypeError):
                if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self.resolve(arg[3]["DefaultValue"])
                raise Unresolvable(f"FindInMap {map_name}/{first}/{second}") from None
        if name == "ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if name == "Base64":
            import base64

            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if name == "GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if name == "Length":
            return len(self.resolve(arg))
        raise Unresolvable(f"Fn::{name} has no local evaluation")

    def _scalar(self, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), dict(arg[1] if len(arg) > 1 else {})
        else:
            text, variables = str(arg), {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(self._scalar(self.resolve(variables[expression])))
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return str(self._scalar(self.get_att(logical_id, attribute)))
            return str(self._scalar(self.ref(expression)))

        return _SUB_RE.sub(replace, text)


class _NoValue(Exception):
    """`!Ref AWS::NoValue`: the enclosing property is dropped."""


def as_env_value(value: Any) -> str:
    """A resolved value as an environment variable string (booleans as CloudFormation writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# --------------------------------------------------------------------------------------------------
# Functions


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
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def _globals(template: Mapping[str, Any], section: str) -> dict[str, Any]:
    return dict(((template.get("Globals") or {}).get(section)) or {})


def function_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties with Globals.Function merged in (the function's own values win)."""
    merged = _globals(template, "Function")
    own = dict(resources(template)[logical_id].get("Properties") or {})
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "Events":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    env_global = ((_globals(template, "Function").get("Environment") or {}).get("Variables")) or {}
    env_own = ((own.get("Environment") or {}).get("Variables")) or {}
    if env_global or env_own:
        merged["Environment"] = {"Variables": {**env_global, **env_own}}
    return merged


def functions(template: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with a handler in a directory (CodeUri relative to the template)."""
    base = base_dir or REPO_ROOT
    found: dict[str, FunctionSpec] = {}
    resolver = Resolver(template)
    for logical_id in resources(template, FUNCTION_TYPE):
        properties = function_properties(template, logical_id)
        code_uri = resolver.try_resolve(properties.get("CodeUri"))
        handler = resolver.try_resolve(properties.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
            continue  # inline code, S3 code or an image: nothing to run locally
        found[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=(base / code_uri).resolve(),
            handler=handler,
            timeout=int(resolver.try_resolve(properties.get("Timeout"), 3) or 3),
            memory_size=int(resolver.try_resolve(properties.get("MemorySize"), 128) or 128),
            properties=properties,
        )
    return found


# --------------------------------------------------------------------------------------------------
# The API, its routes, authorizers and gateway responses


@dataclass(frozen=True)
class ApiSettings:
    """The AWS::Serverless::Api the routes belong to (Globals.Api merged in)."""

    logical_id: str | None
    stage: str = DEFAULT_STAGE
    default_authorizer: str | None = None
    api_key_required: bool = False
    api_key_source: str = "HEADER"
    cors: Mapping[str, Any] | None = None
    add_default_authorizer_to_cors_preflight: bool = True
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


def api_settings(template: Mapping[str, Any]) -> ApiSettings:
    """The API's stage, default authorizer, API-key settings and CORS (the first Serverless::Api)."""
    apis = resources(template, API_TYPE)
    resolver = Resolver(template)
    logical_id = next(iter(apis), None)
    properties = _globals(template, "Api")
    if logical_id:
        for key, value in (apis[logical_id].get("Properties") or {}).items():
            if isinstance(value, dict) and isinstance(properties.get(key), dict):
                properties[key] = {**properties[key], **value}
            else:
                properties[key] = value
    auth = properties.get("Auth") or {}
    cors = properties.get("Cors")
    if isinstance(cors, str):
        cors = {"AllowOrigin": cors}
    default_authorizer = resolver.try_resolve(auth.get("DefaultAuthorizer"))
    return ApiSettings(
        logical_id=logical_id,
        stage=str(resolver.try_resolve(properties.get("StageName"), DEFAULT_STAGE) or DEFAULT_STAGE),
        default_authorizer=None if default_authorizer in (None, "NONE") else str(default_authorizer),
        api_key_required=bool(resolver.try_resolve(auth.get("ApiKeyRequired"), False)),
        api_key_source=str(resolver.try_resolve(properties.get("ApiKeySourceType"), "HEADER") or "HEADER"),
        cors=resolver.try_resolve(cors) if cors else None,
        add_default_authorizer_to_cors_preflight=bool(auth.get("AddDefaultAuthorizerToCorsPreflight", True)),
        properties=properties,
    )


@dataclass(frozen=True)
class Route:
    """One `Type: Api` event: METHOD path -> function, behind an authorizer (None: open)."""

    method: str  # upper case; "ANY" matches every method
    path: str  # the template path, e.g. /api/runners/{runnerId}
    function_id: str
    event_name: str
    authorizer: str | None
    api_key_required: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.path.strip("/").split("/") if part)


def _event_api_id(event_properties: Mapping[str, Any]) -> str | None:
    rest_api = event_properties.get("RestApiId")
    if isinstance(rest_api, dict) and "Ref" in rest_api:
        return str(rest_api["Ref"])
    return str(rest_api) if isinstance(rest_api, str) else None


def routes(template: Mapping[str, Any]) -> list[Route]:
    """Every `Type: Api` event of every function, with its effective authorizer and API-key setting."""
    api = api_settings(template)
    resolver = Resolver(template)
    found: list[Route] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        events = function_properties(template, logical_id).get("Events") or {}
        for event_name, event in events.items():
            if not isinstance(event, dict) or event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            api_id = _event_api_id(properties)
            if api.logical_id and api_id and api_id != api.logical_id:
                continue  # a route of another API
            auth = properties.get("Auth") or {}
            authorizer = resolver.try_resolve(auth.get("Authorizer")) if "Authorizer" in auth else None
            if "Authorizer" not in auth:
                authorizer = api.default_authorizer
            path = "/" + str(resolver.resolve(properties["Path"])).strip("/")
            found.append(
                Route(
                    method=str(resolver.resolve(properties["Method"])).upper(),
                    path=path,
                    function_id=logical_id,
                    event_name=str(event_name),
                    authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                    api_key_required=bool(
                        resolver.try_resolve(auth["ApiKeyRequired"])
                        if "ApiKeyRequired" in auth
                        else api.api_key_required
                    ),
                )
            )
    return found


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda authorizer of the API (REQUEST or TOKEN) and its identity sources."""

    name: str
    function_id: str
    payload_type: str = "REQUEST"  # REQUEST | TOKEN
    headers: tuple[str, ...] = ()
    query_strings: tuple[str, ...] = ()
    stage_variables: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    ttl_seconds: int = 0  # ReauthorizeEvery; 0 disables the result cache
    validation_expression: str | None = None

    @property
    def has_identity_sources(self) -> bool:
        return bool(self.headers or self.query_strings or self.stage_variables or self.context)


def _function_of_arn(value: Any) -> str | None:
    """The logical id in `!GetAtt Fn.Arn` / `!Sub ${Fn.Arn}` / a literal arn ending in :function:Fn."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            parts = target.split(".", 1) if isinstance(target, str) else list(target)
            return str(parts[0])
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            match = re.search(r"\$\{([A-Za-z0-9]+)\.Arn\}", str(text))
            return match.group(1) if match else None
    if isinstance(value, str) and ":function:" in value:
        return value.rsplit(":function:", 1)[1].split(":")[0]
    return None


def authorizers(template: Mapping[str, Any]) -> dict[str, AuthorizerSpec]:
    """The API's Lambda authorizers by name (Auth.Authorizers), with their identity sources and TTL."""
    api = api_settings(template)
    resolver = Resolver(template)
    found: dict[str, AuthorizerSpec] = {}
    for name, definition in ((api.properties.get("Auth") or {}).get("Authorizers") or {}).items():
        if not isinstance(definition, dict):
            continue
        function_id = _function_of_arn(definition.get("FunctionArn"))
        if not function_id:
            continue  # Cognito user pools and the like: not a Lambda authorizer
        payload_type = str(resolver.try_resolve(definition.get("FunctionPayloadType"), "TOKEN") or "TOKEN").upper()
        identity = resolver.try_resolve(definition.get("Identity"), {}) or {}
        if payload_type == "TOKEN":
            headers: tuple[str, ...] = (str(identity.get("Header", "Authorization")),)
            query_strings: tuple[str, ...] = ()
        else:
            headers = tuple(str(h) for h in identity.get("Headers") or ())
            query_strings = tuple(str(q) for q in identity.get("QueryStrings") or ())
        spec = AuthorizerSpec(
            name=str(name),
            function_id=function_id,
            payload_type=payload_type,
            headers=headers,
            query_strings=query_strings,
            stage_variables=tuple(str(s) for s in identity.get("StageVariables") or ()),
            context=tuple(str(c) for c in identity.get("Context") or ()),
            validation_expression=identity.get("ValidationExpression"),
        )
        # API Gateway's default TTL is 300 s; without identity sources nothing can be cached.
        ttl = int(identity.get("ReauthorizeEvery", 300))
        found[str(name)] = dataclasses.replace(spec, ttl_seconds=ttl if spec.has_identity_sources else 0)
    return found


@dataclass(frozen=True)
class GatewayResponseSpec:
    """One entry of the API's GatewayResponses (any part may be absent)."""

    response_type: str
    status: int | None = None
    templates: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def _static_header_value(value: Any) -> str | None:
    """GatewayResponses header values are mapping expressions: 'literal' in single quotes, or a reference."""
    text = str(value)
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1]
    return None  # method.request.header.X and the like: nothing static to send


def gateway_responses(template: Mapping[str, Any]) -> dict[str, GatewayResponseSpec]:
    """The API's GatewayResponses by type (UNAUTHORIZED, ACCESS_DENIED, DEFAULT_4XX, ...)."""
    api = api_settings(template)
    resolver = Resolver(template)
    found: dict[str, GatewayResponseSpec] = {}
    for response_type, definition in (api.properties.get("GatewayResponses") or {}).items():
        definition = resolver.try_resolve(definition, {}) or {}
        status = definition.get("StatusCode")
        parameters = definition.get("ResponseParameters") or {}
        headers: dict[str, str] = {}
        for name, value in (parameters.get("Headers") or {}).items():
            static = _static_header_value(value)
            if static is not None:
                headers[str(name)] = static
        for name, value in parameters.items():  # the raw CloudFormation form, gatewayresponse.header.X
            if isinstance(name, str) and name.startswith("gatewayresponse.header."):
                static = _static_header_value(value)
                if static is not None:
                    headers[name.split(".", 2)[2]] = static
        found[str(response_type)] = GatewayResponseSpec(
            response_type=str(response_type),
            status=int(status) if status not in (None, "") else None,
            templates={str(k): str(v) for k, v in (definition.get("ResponseTemplates") or {}).items()},
            headers=headers,
        )
    return found


# --------------------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class ScheduleSpec:
    """A `Type: Schedule` (or ScheduleV2) event: run `function_id` at `expression`."""

    function_id: str
    event_name: str
    expression: str  # rate(1 minute), rate(5 minutes), cron(...)
    enabled: bool = True
    input: str | None = None  # Input: a JSON string sent instead of the scheduled event

    @property
    def rule_arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{STACK_NAME}-{self.function_id}{self.event_name}"


def schedules(template: Mapping[str, Any]) -> list[ScheduleSpec]:
    """Every schedule event of every function."""
    resolver = Resolver(template)
    found: list[ScheduleSpec] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        events = function_properties(template, logical_id).get("Events") or {}
        for event_name, event in events.items():
            if not isinstance(event, dict) or event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            # Property by property: one without a local value (the DLQ's ARN) must not drop the schedule.
            raw_properties = event.get("Properties") or {}
            properties = {key: resolver.try_resolve(value) for key, value in raw_properties.items()}
            expression = properties.get("Schedule") or properties.get("ScheduleExpression")
            if not expression:
                continue
            state = str(properties.get("State", "ENABLED")).upper()
            enabled = bool(properties.get("Enabled", True)) and state == "ENABLED"
            found.append(
                ScheduleSpec(
                    function_id=logical_id,
                    event_name=str(event_name),
                    expression=str(expression),
                    enabled=enabled,
                    input=properties.get("Input"),
                )
            )
    return found


# --------------------------------------------------------------------------------------------------
# Tables and other resources


_TABLE_KEYS = (
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
)
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection")


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> CreateTable arguments (on-demand; properties moto has no use for are left out).

    Also `"TimeToLiveAttribute"` when the table has an enabled TimeToLiveSpecification.
    """
    resolver = Resolver(template)
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources(template, *TABLE_TYPES).items():
        properties = resolver.resolve(resource.get("Properties") or {})
        name = local_table_name(logical_id)
        if resource["Type"] == "AWS::Serverless::SimpleTable":
            primary = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            kind = {"String": "S", "Number": "N", "Binary": "B"}[str(primary.get("Type", "String"))]
            found[logical_id] = {
                "TableName": name,
                "KeySchema": [{"AttributeName": primary["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": primary["Name"], "AttributeType": kind}],
                "BillingMode": "PAY_PER_REQUEST",
            }
            continue
        arguments: dict[str, Any] = {"TableName": name, "BillingMode": "PAY_PER_REQUEST"}
        for key in _TABLE_KEYS:
            if key in properties:
                arguments[key] = properties[key]
        for index_key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if index_key in arguments:
                arguments[index_key] = [
                    {k: v for k, v in index.items() if k in _INDEX_KEYS} for index in arguments[index_key]
                ]
        stream = arguments.get("StreamSpecification")
        if stream is not None:
            arguments["StreamSpecification"] = {"StreamEnabled": True, **stream}
        ttl = properties.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled", True) and ttl.get("AttributeName"):
            arguments["TimeToLiveAttribute"] = ttl["AttributeName"]
        found[logical_id] = arguments
    return found


def create_tables(dynamodb_client: Any, template: Mapping[str, Any]) -> list[str]:
    """Create every table of the template (TTL included) through `dynamodb_client`; returns their names.

    A table that already exists is left as it is.
    """
    names: list[str] = []
    for arguments in table_definitions(template).values():
        arguments = dict(arguments)
        ttl_attribute = arguments.pop("TimeToLiveAttribute", None)
        with contextlib.suppress(dynamodb_client.exceptions.ResourceInUseException):
            dynamodb_client.create_table(**arguments)
        if ttl_attribute:
            dynamodb_client.update_time_to_live(
                TableName=arguments["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )
        names.append(arguments["TableName"])
    return names


PARAMETER_ENV_PREFIX = "HANGAR_PARAM_"


def parameter_overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Template parameters overridden locally, as `sam deploy --parameter-overrides` would:
    `HANGAR_PARAM_AgentPackageSpec=./agent` sets the AgentPackageSpec parameter."""
    environ = os.environ if environ is None else environ
    return {
        name[len(PARAMETER_ENV_PREFIX) :]: value
        for name, value in environ.items()
        if name.startswith(PARAMETER_ENV_PREFIX)
    }


@dataclass
class Provisioned:
    """What `provision` created: the values `!Ref` / `!GetAtt` resolve to locally."""

    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    usage_plans: dict[str, str] = field(default_factory=dict)  # logical id -> usage plan id

    def resolver(self, template: Mapping[str, Any]) -> Resolver:
        return Resolver(template, self.refs, self.attrs, parameter_overrides_from_env())


def _throttle(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    if not settings:
        return {}
    throttle: dict[str, Any] = {}
    if "BurstLimit" in settings:
        throttle["burstLimit"] = int(settings["BurstLimit"])
    if "RateLimit" in settings:
        throttle["rateLimit"] = float(settings["RateLimit"])
    return throttle


def provision(template: Mapping[str, Any], session: Any) -> Provisioned:
    """Create the template's resources in the local backend (moto) through a boto3 `session`.

    Tables (with TTL), KMS keys and aliases, Secrets Manager secrets (random values), SSM parameters,
    API Gateway usage plans, API keys and usage plan keys. Anything else has no local counterpart and
    is skipped.
    """
    done = Provisioned()
    done.tables = create_tables(session.client("dynamodb"), template)
    for logical_id in resources(template, *TABLE_TYPES):
        done.refs[logical_id] = local_table_name(logical_id)

    resolver = done.resolver(template)
    kms = session.client("kms")
    for logical_id, resource in resources(template, "AWS::KMS::Key").items():
        description = resolver.try_resolve((resource.get("Properties") or {}).get("Description"), "") or ""
        key = kms.create_key(Description=str(description) or logical_id)["KeyMetadata"]
        done.refs[logical_id] = key["KeyId"]
        done.attrs[(logical_id, "Arn")] = key["Arn"]
        done.attrs[(logical_id, "KeyId")] = key["KeyId"]
    for logical_id, resource in resources(template, "AWS::KMS::Alias").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        if properties.get("AliasName") and properties.get("TargetKeyId"):
            kms.create_alias(AliasName=properties["AliasName"], TargetKeyId=properties["TargetKeyId"])
            done.refs[logical_id] = str(properties["AliasName"])

    secretsmanager = session.client("secretsmanager")
    for logical_id, resource in resources(template, "AWS::SecretsManager::Secret").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        value = properties.get("SecretString") or secrets.token_urlsafe(32)
        created = secretsmanager.create_secret(Name=str(properties.get("Name") or logical_id), SecretString=value)
        done.refs[logical_id] = created["ARN"]
        done.attrs[(logical_id, "Id")] = created["ARN"]

    ssm = session.client("ssm")
    for logical_id, resource in resources(template, "AWS::SSM::Parameter").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        name = str(properties.get("Name") or f"/{STACK_NAME}/{logical_id}")
        ssm.put_parameter(
            Name=name,
            Value=str(properties.get("Value", "")),
            Type=str(properties.get("Type", "String")),
            Overwrite=True,
        )
        done.refs[logical_id] = name

    s3 = session.client("s3")
    for logical_id in resources(template, "AWS::S3::Bucket"):
        name = local_bucket_name(logical_id)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        done.refs[logical_id] = name
        done.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    apigateway = session.client("apigateway")
    for logical_id, resource in resources(template, "AWS::ApiGateway::UsagePlan").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        arguments: dict[str, Any] = {"name": str(properties.get("UsagePlanName") or logical_id)}
        if properties.get("Description"):
            arguments["description"] = str(properties["Description"])
        if throttle := _throttle(properties.get("Throttle")):
            arguments["throttle"] = throttle
        quota = properties.get("Quota")
        if quota:
            arguments["quota"] = {"limit": int(quota["Limit"]), "period": str(quota["Period"])}
            if "Offset" in quota:
                arguments["quota"]["offset"] = int(quota["Offset"])
        plan_id = apigateway.create_usage_plan(**arguments)["id"]
        done.refs[logical_id] = plan_id
        done.usage_plans[logical_id] = plan_id
    for logical_id, resource in resources(template, "AWS::ApiGateway::ApiKey").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        key_arguments: dict[str, Any] = {
            "name": str(properties.get("Name") or logical_id),
            "enabled": bool(properties.get("Enabled", False)),
        }
        for source, target in (("Description", "description"), ("Value", "value")):
            if properties.get(source):
                key_arguments[target] = str(properties[source])
        key_id = apigateway.create_api_key(**key_arguments)["id"]
        done.refs[logical_id] = key_id
        done.attrs[(logical_id, "APIKeyId")] = key_id
    for logical_id, resource in resources(template, "AWS::ApiGateway::UsagePlanKey").items():
        properties = done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}
        if properties.get("KeyId") and properties.get("UsagePlanId"):
            apigateway.create_usage_plan_key(
                usagePlanId=str(properties["UsagePlanId"]),
                keyId=str(properties["KeyId"]),
                keyType=str(properties.get("KeyType", "API_KEY")),
            )
            done.refs[logical_id] = f"{properties['KeyId']}:{properties['UsagePlanId']}"
    return done


# --------------------------------------------------------------------------------------------------
# Environment


def function_environment(
    template: Mapping[str, Any], resolver: Resolver | None = None, function_ids: Iterable[str] | None = None
) -> dict[str, str]:
    """The merged environment of the functions (all by default): Globals, then each function's own.

    Every variable is resolved with `resolver`; one that cannot be resolved locally is left unset.
    Functions share one process locally, so a variable two functions set differently is reported on
    stderr and the later function's value is kept.
    """
    resolver = resolver or Resolver(template)
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    ids = list(function_ids) if function_ids is not None else list(resources(template, FUNCTION_TYPE))
    globals_env = ((_globals(template, "Function").get("Environment") or {}).get("Variables")) or {}
    for name, value in globals_env.items():
        try:
            merged[str(name)] = as_env_value(resolver.resolve(value))
            origin[str(name)] = "Globals"
        except (Unresolvable, _NoValue):
            continue
    for logical_id in ids:
        own = ((resources(template)[logical_id].get("Properties") or {}).get("Environment") or {}).get("Variables")
        for name, value in (own or {}).items():
            try:
                resolved = as_env_value(resolver.resolve(value))
            except (Unresolvable, _NoValue):
                continue
            name = str(name)
            if name in merged and merged[name] != resolved and origin.get(name) != "Globals":
                print(
                    f"local: {name} differs between {origin[name]} and {logical_id}; using {logical_id}'s",
                    file=sys.stderr,
                )
            merged[name] = resolved
            origin[name] = logical_id
    return merged
