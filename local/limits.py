"""Rate limits in the local gateway: template.yaml's usage plans and WAF rules, enforced as in AWS.

The gateway consults a `LimitPolicy` twice per API request:

1. `before_authorizer(request, route)` — before any authorizer runs: where AWS WAF sits in front of
   the stage. `TemplateLimits` evaluates the rules of every `AWS::WAFv2::WebACL` associated with the
   API (`AWS::WAFv2::WebACLAssociation`): rate-based rules (a sliding window of `EvaluationWindowSec`
   per aggregation key — a header such as `X-Runner-Token`, the source IP, ... — narrowed by their
   scope-down statement) and plain match rules, answered with the rule's custom response.
2. `after_authorizer(request, route, grant)` — once the caller is known: `grant.usage_identifier_key`
   is the API key the authorizer returned (`ApiKeySourceType: AUTHORIZER`). On a route that requires
   a key, no key, or a key in no usage plan of the API, is 403 INVALID_API_KEY; then the key's usage
   plan applies: a token bucket per key at the plan's `Throttle` (RateLimit/s refill, BurstLimit
   capacity), one per key and method for the plan's method throttles (`ApiStages[].Throttle`, keyed
   "/resource/METHOD"), both answering THROTTLED, and the `Quota` (requests per DAY/WEEK/MONTH,
   calendar periods in UTC) answering QUOTA_EXCEEDED.

Each returns None to let the request through, or a `Refusal`: a gateway response type (`THROTTLED`,
`QUOTA_EXCEEDED`, `INVALID_API_KEY`, ...) served from the template's GatewayResponses, with extra
headers, or an explicit status/body (a WAF custom response). Time is `request.now`, the local clock
(`hangar.clock.now()`, which `POST /_local/clock` moves), so advancing it moves every window.

Which key is in which usage plan is asked of the local backend (moto's API Gateway), where tenant
provisioning creates keys and license changes move them, so a plan change applies on the next request.

`HANGAR_LOCAL_LIMITS=off` in the server's environment turns every limit off (benchmarks, demos).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    from local.template import Route


@dataclass(frozen=True)
class RequestInfo:
    """What a limit may key on. Header lookups are case-insensitive through `header()`."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    source_ip: str
    now: float

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Grant:
    """What the route's authorizer allowed: its principal, context and usage identifier key."""

    authorizer: str
    principal_id: str
    context: Mapping[str, Any]
    usage_identifier_key: str | None


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: a gateway response type, or an explicit status and body."""

    response_type: str = "THROTTLED"
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None  # overrides the gateway response's status
    body: str | None = None  # overrides the gateway response's body (sent as application/json)
    message: str | None = None  # $context.error.message in the gateway response template


class LimitPolicy(Protocol):
    """A rate-limit policy; see the module docstring for when each method is called."""

    def before_authorizer(self, request: RequestInfo, route: Route) -> Refusal | None: ...

    def after_authorizer(self, request: RequestInfo, route: Route, grant: Grant | None) -> Refusal | None: ...


class AllowAll:
    """The policy that never refuses."""

    def before_authorizer(self, request: RequestInfo, route: Route) -> Refusal | None:
        return None

    def after_authorizer(self, request: RequestInfo, route: Route, grant: Grant | None) -> Refusal | None:
        return None


_warned: set[str] = set()


def _warn(message: str) -> None:
    """Once per message: a statement the emulation lacks would otherwise be reported on every request."""
    if message not in _warned:
        _warned.add(message)
        print(f"local: limits: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Usage plans, read from the template


@dataclass(frozen=True)
class Throttle:
    """A token bucket: `rate` requests per second steady, `burst` at once."""

    rate: float
    burst: int


@dataclass(frozen=True)
class UsagePlanSpec:
    """One AWS::ApiGateway::UsagePlan of the API: its plan-wide throttle, quota and method throttles."""

    logical_id: str
    name: str
    throttle: Throttle | None = None
    quota_limit: int | None = None
    quota_period: str = "MONTH"  # DAY | WEEK | MONTH
    method_throttles: Mapping[str, Throttle] = field(default_factory=dict)  # "/path/METHOD" -> bucket


def _throttle(settings: Any) -> Throttle | None:
    if not isinstance(settings, Mapping) or ("RateLimit" not in settings and "BurstLimit" not in settings):
        return None
    rate = float(settings.get("RateLimit", 0) or 0)
    burst = int(settings.get("BurstLimit", 0) or 0)
    return Throttle(rate=rate, burst=max(burst, 1 if rate > 0 else 0))


def usage_plans(template: Mapping[str, Any]) -> dict[str, UsagePlanSpec]:
    """The usage plans that cover the template's API, by logical id (names resolved as locally)."""
    from local.template import Resolver, api_settings, parameter_overrides_from_env, resources

    api = api_settings(template)
    resolver = Resolver(template, parameter_overrides=parameter_overrides_from_env())
    found: dict[str, UsagePlanSpec] = {}
    for logical_id, resource in resources(template, "AWS::ApiGateway::UsagePlan").items():
        properties = resource.get("Properties") or {}
        name = resolver.try_resolve(properties.get("UsagePlanName"), logical_id) or logical_id
        method_throttles: dict[str, Throttle] = {}
        covers_api = False
        for stage in properties.get("ApiStages") or []:
            api_ref = stage.get("ApiId")
            if not (isinstance(api_ref, Mapping) and api_ref.get("Ref") == api.logical_id):
                continue
            covers_api = True
            for method_key, settings in (resolver.try_resolve(stage.get("Throttle"), {}) or {}).items():
                bucket = _throttle(settings)
                if bucket is not None:
                    method_throttles[_method_key_of(str(method_key))] = bucket
        if not covers_api:
            continue
        quota = resolver.try_resolve(properties.get("Quota"), {}) or {}
        found[logical_id] = UsagePlanSpec(
            logical_id=logical_id,
            name=str(name),
            throttle=_throttle(resolver.try_resolve(properties.get("Throttle"), {})),
            quota_limit=int(quota["Limit"]) if "Limit" in quota else None,
            quota_period=str(quota.get("Period", "MONTH")).upper(),
            method_throttles=method_throttles,
        )
    return found


def _method_key_of(text: str) -> str:
    """`/api/runners/heartbeat/POST`, spelled as the gateway's routes are (template path, METHOD)."""
    path, _, method = text.rstrip("/").rpartition("/")
    return f"/{path.strip('/')}/{method.upper()}"


def method_key(route: Route) -> str:
    return _method_key_of(f"{route.path}/{route.method}")


def quota_period_start(now: float, period: str) -> float:
    """Start of the calendar period (UTC) that `now` falls in: API Gateway's quota periods, offset 0."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        start = day
    elif period == "WEEK":  # API Gateway's weeks start on Sunday
        start = day - timedelta(days=(day.weekday() + 1) % 7)
    else:
        start = day.replace(day=1)
    return start.timestamp()


# --------------------------------------------------------------------------------------------------
# AWS WAF rules, read from the template


@dataclass(frozen=True)
class WafRule:
    """One rule of an associated web ACL; `rate_*` set for rate-based rules."""

    name: str
    priority: int
    action: str  # Block | Allow | Count | Captcha | Challenge
    statement: Mapping[str, Any]  # the match statement (the scope-down one for rate-based rules)
    refusal: Refusal | None  # what a Block answers
    rate_limit: int | None = None
    rate_window_seconds: int = 300
    aggregation: tuple[Mapping[str, Any], ...] = ()  # CUSTOM_KEYS entries; ({"IP": {}},) for IP

    @property
    def rate_based(self) -> bool:
        return self.rate_limit is not None


def _block_refusal(action: Mapping[str, Any], bodies: Mapping[str, Any]) -> Refusal:
    custom = (action.get("Block") or {}).get("CustomResponse") or {}
    if not custom:  # WAF's default block response
        return Refusal(status=403, body='{"message": "Forbidden"}')
    body_key = custom.get("CustomResponseBodyKey")
    content = (bodies.get(body_key) or {}).get("Content", "") if body_key else ""
    headers = {str(h["Name"]): str(h["Value"]) for h in custom.get("ResponseHeaders") or []}
    return Refusal(status=int(custom.get("ResponseCode", 403)), body=str(content), headers=headers)


def waf_rules(template: Mapping[str, Any]) -> list[WafRule]:
    """The rules of every web ACL associated with the template's API, in priority order."""
    from local.template import Resolver, api_settings, parameter_overrides_from_env, resources

    api = api_settings(template)
    resolver = Resolver(template, parameter_overrides=parameter_overrides_from_env())
    associated: list[str] = []
    for association in resources(template, "AWS::WAFv2::WebACLAssociation").values():
        properties = association.get("Properties") or {}
        acl = properties.get("WebACLArn")
        target = repr(properties.get("ResourceArn"))
        if isinstance(acl, Mapping) and "Fn::GetAtt" in acl and api.logical_id and api.logical_id in target:
            attribute = acl["Fn::GetAtt"]
            associated.append(str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0]))
    rules: list[WafRule] = []
    for logical_id in associated:
        acl = resources(template).get(logical_id) or {}
        acl_properties = resolver.try_resolve(acl.get("Properties"), {}) or {}
        bodies = acl_properties.get("CustomResponseBodies") or {}
        for rule in acl_properties.get("Rules") or []:
            statement = rule.get("Statement") or {}
            action_map = rule.get("Action") or {}
            action = next(iter(action_map), "Count")
            refusal = _block_refusal(action_map, bodies) if action == "Block" else None
            rate = statement.get("RateBasedStatement")
            if rate is None:
                rules.append(WafRule(str(rule["Name"]), int(rule.get("Priority", 0)), action, statement, refusal))
                continue
            key_type = str(rate.get("AggregateKeyType", "IP"))
            if key_type == "CUSTOM_KEYS":
                aggregation = tuple(rate.get("CustomKeys") or ())
            elif key_type == "CONSTANT":
                aggregation = ()
            else:  # IP (FORWARDED_IP: no proxy header locally, the source IP stands in)
                aggregation = ({"IP": {}},)
            rules.append(
                WafRule(
                    name=str(rule["Name"]),
                    priority=int(rule.get("Priority", 0)),
                    action=action,
                    statement=rate.get("ScopeDownStatement") or {},
                    refusal=refusal,
                    rate_limit=int(rate["Limit"]),
                    rate_window_seconds=int(rate.get("EvaluationWindowSec", 300)),
                    aggregation=aggregation,
                )
            )
    return sorted(rules, key=lambda rule: rule.priority)


def _transform(value: str, transformations: Iterable[Mapping[str, Any]]) -> str:
    for transformation in sorted(transformations or (), key=lambda t: int(t.get("Priority", 0))):
        kind = str(transformation.get("Type", "NONE")).upper()
        if kind == "LOWERCASE":
            value = value.lower()
        elif kind == "URL_DECODE":
            value = unquote(value)
        elif kind == "COMPRESS_WHITE_SPACE":
            value = re.sub(r"\s+", " ", value)
        elif kind != "NONE":
            _warn(f"text transformation {kind} is not emulated; the value is used as is")
    return value


def _field_value(field_to_match: Mapping[str, Any], request: RequestInfo) -> str | None:
    if "UriPath" in field_to_match:
        return request.path
    if "Method" in field_to_match:
        return request.method
    if "QueryString" in field_to_match:
        return "&".join(f"{k}={v}" for k, v in request.query.items())
    if "SingleHeader" in field_to_match:
        return request.header(str(field_to_match["SingleHeader"].get("Name", "")))
    if "SingleQueryArgument" in field_to_match:
        wanted = str(field_to_match["SingleQueryArgument"].get("Name", "")).lower()
        return next((v for k, v in request.query.items() if k.lower() == wanted), None)
    _warn(f"FieldToMatch {sorted(field_to_match)} is not emulated; the statement does not match")
    return None


def statement_matches(statement: Mapping[str, Any], request: RequestInfo) -> bool:
    """A WAF match statement against the request (byte/regex match, and/or/not; an empty one matches)."""
    if not statement:
        return True
    if "AndStatement" in statement:
        return all(statement_matches(s, request) for s in statement["AndStatement"].get("Statements", []))
    if "OrStatement" in statement:
        return any(statement_matches(s, request) for s in statement["OrStatement"].get("Statements", []))
    if "NotStatement" in statement:
        return not statement_matches(statement["NotStatement"].get("Statement", {}), request)
    if "ByteMatchStatement" in statement:
        spec = statement["ByteMatchStatement"]
        value = _field_value(spec.get("FieldToMatch") or {}, request)
        if value is None:
            return False
        value = _transform(value, spec.get("TextTransformations") or ())
        wanted = str(spec.get("SearchString", ""))
        position = str(spec.get("PositionalConstraint", "CONTAINS"))
        return {
            "EXACTLY": value == wanted,
            "STARTS_WITH": value.startswith(wanted),
            "ENDS_WITH": value.endswith(wanted),
            "CONTAINS": wanted in value,
            "CONTAINS_WORD": re.search(rf"(^|\W){re.escape(wanted)}(\W|$)", value) is not None,
        }.get(position, False)
    if "RegexMatchStatement" in statement:
        spec = statement["RegexMatchStatement"]
        value = _field_value(spec.get("FieldToMatch") or {}, request)
        if value is None:
            return False
        value = _transform(value, spec.get("TextTransformations") or ())
        return re.search(str(spec.get("RegexString", "")), value) is not None
    _warn(f"WAF statement {sorted(statement)} is not emulated; it does not match")
    return False


def aggregation_key(rule: WafRule, request: RequestInfo) -> tuple[str, ...] | None:
    """The rule's aggregation instance for the request; None when a key is missing (WAF skips it)."""
    values: list[str] = []
    for key in rule.aggregation:
        if "IP" in key or "ForwardedIP" in key:
            value: str | None = request.source_ip
        elif "Header" in key:
            spec = key["Header"]
            value = request.header(str(spec.get("Name", "")))
            value = None if value is None else _transform(value, spec.get("TextTransformations") or ())
        elif "HTTPMethod" in key:
            value = request.method
        elif "UriPath" in key:
            value = _transform(request.path, key["UriPath"].get("TextTransformations") or ())
        elif "QueryArgument" in key:
            spec = key["QueryArgument"]
            wanted = str(spec.get("Name", "")).lower()
            value = next((v for k, v in request.query.items() if k.lower() == wanted), None)
        else:
            _warn(f"aggregation key {sorted(key)} is not emulated; the rule skips the request")
            return None
        if value is None or value == "":
            return None
        values.append(value)
    return tuple(values)


# --------------------------------------------------------------------------------------------------
# Which usage plan a key is in (the local backend)


class KeyDirectory(Protocol):
    def plan_of(self, key_value: str) -> str | None:
        """The logical id of the template usage plan the enabled key is in; None if none."""
        ...


class BackendKeyDirectory:
    """Asks the local backend (moto's API Gateway) which usage plan holds a key: one call per request,
    so a plan move applies at once. Key ids by value are cached (a key's value never changes)."""

    def __init__(self, apigateway: Any, plans: Mapping[str, UsagePlanSpec]) -> None:
        self.apigateway = apigateway
        self.plans = plans
        self._keys: dict[str, tuple[str, bool]] = {}  # value -> (id, enabled)
        self._plan_ids: dict[str, str] = {}  # backend usage plan id -> template logical id
        self._lock = threading.Lock()

    def _refresh_keys(self) -> None:
        keys: dict[str, tuple[str, bool]] = {}
        for page in self.apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                keys[str(key.get("value", ""))] = (str(key["id"]), bool(key.get("enabled", False)))
        with self._lock:
            self._keys = keys

    def _refresh_plans(self) -> None:
        by_name = {spec.name: logical_id for logical_id, spec in self.plans.items()}
        plan_ids: dict[str, str] = {}
        for page in self.apigateway.get_paginator("get_usage_plans").paginate():
            for plan in page.get("items", []):
                logical_id = by_name.get(str(plan.get("name", "")))
                if logical_id:
                    plan_ids[str(plan["id"])] = logical_id
        with self._lock:
            self._plan_ids = plan_ids

    def plan_of(self, key_value: str) -> str | None:
        known = self._keys.get(key_value)
        if known is None:
            self._refresh_keys()
            known = self._keys.get(key_value)
            if known is None:
                return None
        key_id, enabled = known
        if not enabled:
            return None
        items = self.apigateway.get_usage_plans(keyId=key_id).get("items", [])
        for plan in items:
            plan_id = str(plan["id"])
            if plan_id not in self._plan_ids:
                self._refresh_plans()
            if plan_id in self._plan_ids:
                return self._plan_ids[plan_id]
        return None


# --------------------------------------------------------------------------------------------------
# The policy


@dataclass
class _Bucket:
    tokens: float
    updated: float

    def refill(self, throttle: Throttle, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(throttle.burst), self.tokens + elapsed * throttle.rate)
        self.updated = now


class TemplateLimits:
    """The template's WAF rules before the authorizer, its usage plans after it (module docstring)."""

    def __init__(
        self,
        plans: Mapping[str, UsagePlanSpec],
        rules: Iterable[WafRule],
        keys: KeyDirectory | None,
        log: Callable[[str], None] = _warn,
    ) -> None:
        self.plans = dict(plans)
        self.rules = list(rules)
        self.keys = keys
        self.log = log
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, tuple[str, ...]], deque[float]] = {}
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._quotas: dict[tuple[str, str], tuple[float, int]] = {}  # (plan, key) -> (period start, used)

    # -- WAF ---------------------------------------------------------------------------------------

    def before_authorizer(self, request: RequestInfo, route: Route) -> Refusal | None:
        for rule in self.rules:
            if not statement_matches(rule.statement, request):
                continue
            if rule.rate_based:
                instance = aggregation_key(rule, request)
                if instance is None or not self._over_rate(rule, instance, request.now):
                    continue
            if rule.action == "Block":
                return rule.refusal
            if rule.action == "Allow":
                return None
            # Count (and CAPTCHA/Challenge, which have no local meaning): go on to the next rule.
        return None

    def _over_rate(self, rule: WafRule, instance: tuple[str, ...], now: float) -> bool:
        """Counts the request (WAF counts every request in scope, blocked or not); True when the trailing
        window holds more than the limit."""
        assert rule.rate_limit is not None
        with self._lock:
            window = self._windows.setdefault((rule.name, instance), deque())
            while window and window[0] <= now - rule.rate_window_seconds:
                window.popleft()
            window.append(now)
            return len(window) > rule.rate_limit

    # -- usage plans -------------------------------------------------------------------------------

    def after_authorizer(self, request: RequestInfo, route: Route, grant: Grant | None) -> Refusal | None:
        if not route.api_key_required or self.keys is None:
            return None
        key = grant.usage_identifier_key if grant is not None else None
        plan_id = self.keys.plan_of(key) if key else None
        plan = self.plans.get(plan_id) if plan_id else None
        if key is None or plan is None:
            return Refusal("INVALID_API_KEY")
        return self._charge(plan, key, method_key(route), request.now)

    def _charge(self, plan: UsagePlanSpec, key: str, method: str, now: float) -> Refusal | None:
        with self._lock:
            buckets: list[tuple[_Bucket, Throttle]] = []
            for scope, throttle in (("", plan.throttle), (method, plan.method_throttles.get(method))):
                if throttle is None:
                    continue
                bucket = self._buckets.setdefault(
                    (plan.logical_id, key, scope), _Bucket(tokens=float(throttle.burst), updated=now)
                )
                bucket.refill(throttle, now)
                if bucket.tokens < 1:
                    return Refusal("THROTTLED")
                buckets.append((bucket, throttle))
            if plan.quota_limit is not None:
                start = quota_period_start(now, plan.quota_period)
                period_start, used = self._quotas.get((plan.logical_id, key), (start, 0))
                if period_start != start:
                    used = 0
                if used >= plan.quota_limit:
                    return Refusal("QUOTA_EXCEEDED")
                self._quotas[(plan.logical_id, key)] = (start, used + 1)
            for bucket, _ in buckets:
                bucket.tokens -= 1
        return None


def policy_for(template: Mapping[str, Any], session: Any = None) -> LimitPolicy:
    """The limit policy for this template (`session`: boto3 session on the local backend, if needed)."""
    if os.environ.get("HANGAR_LOCAL_LIMITS", "on").lower() in ("off", "0", "false", "no"):
        _warn("HANGAR_LOCAL_LIMITS=off: usage plans and WAF rules are not enforced")
        return AllowAll()
    plans = usage_plans(template)
    keys = BackendKeyDirectory(session.client("apigateway"), plans) if session is not None and plans else None
    return TemplateLimits(plans, waf_rules(template), keys)
