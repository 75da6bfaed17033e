"""template.yaml's usage plans (plan throttle, method throttles, quota) and which plan a key is in, asked
of the embedded backend (moto's API Gateway), where tenant provisioning creates keys and license changes
move them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from local.template import Resolver, Route, api_settings, in_resource, resources


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
        with in_resource(logical_id):
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
