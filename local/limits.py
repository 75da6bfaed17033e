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
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from local.outcomes import Grant, Refusal, RequestInfo
from local.template import Route
from local.usage_plans import (
    BackendKeyDirectory,
    KeyDirectory,
    Throttle,
    UsagePlanSpec,
    method_key,
    quota_period_start,
    usage_plans,
)
from local.waf import WafRule, aggregation_key, statement_matches, waf_rules

__all__ = [
    "AllowAll", "Grant", "LimitPolicy", "Refusal", "RequestInfo", "TemplateLimits", "UsagePlanSpec", "policy_for",
    "quota_period_start", "statement_matches", "usage_plans", "waf_rules",
]  # fmt: skip


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
