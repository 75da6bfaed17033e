"""Rate limits in the local gateway: template.yaml's usage plans and WAF rules, enforced as in AWS.

The gateway consults a `LimitPolicy` twice per API request:

1. `before_authorizer(request, route)`: where AWS WAF sits, in front of the stage. The rate-based rules
   of the web ACL associated with the API: a sliding window of `EvaluationWindowSec` per aggregation key
   (a header such as `X-Runner-Token`, or the source IP), narrowed by a regex scope-down statement,
   answered with the rule's custom response.
2. `after_authorizer(request, route, grant)`: `grant.usage_identifier_key` is the API key the authorizer
   returned (`ApiKeySourceType: AUTHORIZER`). On a route that requires a key, no key or a key in no usage
   plan is 403 INVALID_API_KEY; then the key's usage plan applies: a token bucket per key at the plan's
   `Throttle`, one per key and method for its method throttles (`ApiStages[].Throttle`), both answering
   THROTTLED, and the `Quota` (calendar periods in UTC) answering QUOTA_EXCEEDED.

Which key is in which usage plan is asked of the embedded backend (moto's API Gateway), where tenant
provisioning creates keys and license changes move them, so a plan change applies on the next request.
Time is `request.now`, the local clock, so `POST /_local/clock` moves every window.
`HANGAR_LOCAL_LIMITS=off` turns every limit off (benchmarks, demos).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from local.template import NotSupportedLocally, Resolver, Route, api_settings, resources


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
    authorizer_context: Mapping[str, Any] = field(default_factory=dict)  # a Deny's: $context.authorizer.*


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


# -- usage plans, read from the template -------------------------------------------------------------------


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
    api = api_settings(template)
    resolver = Resolver(template)
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


# -- AWS WAF rules, read from the template ----------------------------------------------------------------


@dataclass(frozen=True)
class WafRule:
    """One rate-based rule of an associated web ACL: at most `rate_limit` requests per trailing
    `rate_window_seconds` per aggregation instance, for requests its scope-down statement matches."""

    name: str
    priority: int
    action: str  # Block | Count
    statement: Mapping[str, Any]  # the scope-down statement
    refusal: Refusal | None  # what a Block answers
    rate_limit: int
    rate_window_seconds: int
    aggregation: tuple[Mapping[str, Any], ...]  # ({"IP": {}},) or ({"Header": {"Name": ...}}, ...)


def _block_refusal(action: Mapping[str, Any], bodies: Mapping[str, Any]) -> Refusal:
    custom = (action.get("Block") or {}).get("CustomResponse") or {}
    if not custom:  # WAF's default block response
        return Refusal(status=403, body='{"message": "Forbidden"}')
    content = (bodies.get(str(custom.get("CustomResponseBodyKey"))) or {}).get("Content", "")
    headers = {str(h["Name"]): str(h["Value"]) for h in custom.get("ResponseHeaders") or []}
    return Refusal(status=int(custom.get("ResponseCode", 403)), body=str(content), headers=headers)


def _check_transformations(transformations: Iterable[Mapping[str, Any]]) -> None:
    for transformation in transformations or ():
        if transformation.get("Type") != "NONE":
            raise NotSupportedLocally(f"the WAF text transformation {transformation.get('Type')}")


def _statement(statement: Mapping[str, Any]) -> Mapping[str, Any]:
    """A scope-down statement local/ evaluates: a RegexMatchStatement on the URI path."""
    spec = statement.get("RegexMatchStatement") or {}
    if set(statement) != {"RegexMatchStatement"} or set(spec.get("FieldToMatch") or {}) != {"UriPath"}:
        raise NotSupportedLocally(f"the WAF statement {sorted(statement)}")
    _check_transformations(spec.get("TextTransformations") or ())
    return statement


def waf_rules(template: Mapping[str, Any]) -> list[WafRule]:
    """The rules of every web ACL associated with the template's API, in priority order."""
    api = api_settings(template)
    resolver = Resolver(template)
    rules: list[WafRule] = []
    for association in resources(template, "AWS::WAFv2::WebACLAssociation").values():
        properties = association.get("Properties") or {}
        if not api.logical_id or api.logical_id not in repr(properties.get("ResourceArn")):
            continue
        acl = resources(template)[properties["WebACLArn"]["Fn::GetAtt"][0]]
        acl_properties = resolver.try_resolve(acl.get("Properties"), {}) or {}
        for rule in acl_properties.get("Rules") or []:
            rate = (rule.get("Statement") or {}).get("RateBasedStatement")
            action = next(iter(rule.get("Action") or {"Count": {}}))
            if rate is None or action not in ("Block", "Count"):
                raise NotSupportedLocally(f"WAF rule {rule.get('Name')}: only rate-based rules that Block or Count")
            key_type = rate.get("AggregateKeyType", "IP")
            if key_type == "CUSTOM_KEYS":
                aggregation = tuple(rate.get("CustomKeys") or ())
                for key in aggregation:
                    if set(key) != {"Header"}:
                        raise NotSupportedLocally(f"the WAF aggregation key {sorted(key)}")
                    _check_transformations(key["Header"].get("TextTransformations"))
            elif key_type == "IP":
                aggregation = ({"IP": {}},)
            else:
                raise NotSupportedLocally(f"the WAF AggregateKeyType {key_type}")
            rules.append(
                WafRule(
                    name=str(rule["Name"]),
                    priority=int(rule.get("Priority", 0)),
                    action=action,
                    statement=_statement(rate["ScopeDownStatement"]) if "ScopeDownStatement" in rate else {},
                    refusal=_block_refusal(rule["Action"], acl_properties.get("CustomResponseBodies") or {}),
                    rate_limit=int(rate["Limit"]),
                    rate_window_seconds=int(rate.get("EvaluationWindowSec", 300)),
                    aggregation=aggregation,
                )
            )
    return sorted(rules, key=lambda rule: rule.priority)


def statement_matches(statement: Mapping[str, Any], request: RequestInfo) -> bool:
    """A scope-down statement against the request (an empty one matches everything)."""
    if not statement:
        return True
    return re.search(str(statement["RegexMatchStatement"]["RegexString"]), request.path) is not None


def aggregation_key(rule: WafRule, request: RequestInfo) -> tuple[str, ...] | None:
    """The rule's aggregation instance for the request; None when a key is missing (WAF skips it)."""
    values = [
        request.source_ip if "IP" in key else request.header(str(key["Header"]["Name"])) for key in rule.aggregation
    ]
    return None if any(not value for value in values) else tuple(str(value) for value in values)


# -- which usage plan a key is in (the embedded backend) ----------------------------------------------------


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


# -- the policy ------------------------------------------------------------------------------------------


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
    ) -> None:
        self.plans = dict(plans)
        self.rules = list(rules)
        self.keys = keys
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, tuple[str, ...]], deque[float]] = {}
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._quotas: dict[tuple[str, str], tuple[float, int]] = {}  # (plan, key) -> (period start, used)

    # -- WAF ---------------------------------------------------------------------------------------

    def before_authorizer(self, request: RequestInfo, route: Route) -> Refusal | None:
        for rule in self.rules:
            if not statement_matches(rule.statement, request):
                continue
            instance = aggregation_key(rule, request)
            if instance is not None and self._over_rate(rule, instance, request.now) and rule.action == "Block":
                return rule.refusal
        return None

    def _over_rate(self, rule: WafRule, instance: tuple[str, ...], now: float) -> bool:
        """Counts the request (WAF counts every request in scope, blocked or not); True when the trailing
        window holds more than the limit."""
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
        print("local: HANGAR_LOCAL_LIMITS=off: usage plans and WAF rules are not enforced", file=sys.stderr)
        return AllowAll()
    plans = usage_plans(template)
    keys = BackendKeyDirectory(session.client("apigateway"), plans) if session is not None and plans else None
    return TemplateLimits(plans, waf_rules(template), keys)
