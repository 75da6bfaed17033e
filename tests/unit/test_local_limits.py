"""local/limits.py with template.yaml's real numbers on a synthetic clock: usage-plan token buckets,
method throttles, quotas, API-key checks and the WAF rate rules (tests/e2e covers them over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import template

from local.limits import (
    AllowAll,
    Grant,
    RequestInfo,
    TemplateLimits,
    UsagePlanSpec,
    policy_for,
    quota_period_start,
    usage_plans,
    waf_rules,
)
from local.template import Route, routes

TEMPLATE = template()
ROUTES = {(route.method, route.path): route for route in routes(TEMPLATE)}
HEARTBEAT = ROUTES[("POST", "/api/runners/heartbeat")]
POLL = ROUTES[("POST", "/api/runners/jobs")]
LICENSE = ROUTES[("GET", "/v1/license")]
REGISTER = ROUTES[("POST", "/v1/runners/register")]
T0 = datetime(2030, 5, 17, 12, 0, tzinfo=UTC).timestamp()


class Directory:
    """Which plan each key is in (the local backend's answer, here a dict)."""

    def __init__(self, plans: dict[str, str]) -> None:
        self.plans = plans

    def plan_of(self, key_value: str) -> str | None:
        return self.plans.get(key_value)


def policy(keys: dict[str, str] | None = None, plans: dict[str, UsagePlanSpec] | None = None) -> TemplateLimits:
    return TemplateLimits(plans or usage_plans(TEMPLATE), waf_rules(TEMPLATE), Directory(keys or {}))


def request(route: Route, now: float, headers: dict[str, str] | None = None, ip: str = "198.51.100.7") -> RequestInfo:
    return RequestInfo(method=route.method, path=route.path, headers=headers or {}, query={}, source_ip=ip, now=now)


def grant(key: str | None) -> Grant:
    return Grant(authorizer="UserAuthorizer", principal_id="p", context={}, usage_identifier_key=key)


def charge(limits: TemplateLimits, route: Route, key: str | None, now: float) -> str | None:
    refusal = limits.after_authorizer(request(route, now), route, grant(key))
    return None if refusal is None else refusal.response_type


# -- usage plans -------------------------------------------------------------------------------------


def test_free_plan_bucket_takes_its_burst_then_its_rate() -> None:
    limits = policy({"k-free": "FreeUsagePlan", "k-other": "FreeUsagePlan"})
    assert [charge(limits, LICENSE, "k-free", T0) for _ in range(100)] == [None] * 100
    assert charge(limits, LICENSE, "k-free", T0) == "THROTTLED"
    assert charge(limits, LICENSE, "k-other", T0) is None  # per key: another tenant is not affected
    # One second later, 50 more (RateLimit 50).
    results = [charge(limits, LICENSE, "k-free", T0 + 1) for _ in range(51)]
    assert results == [None] * 50 + ["THROTTLED"]


def test_runner_routes_have_their_own_smaller_bucket_per_tenant() -> None:
    limits = policy({"k": "FreeUsagePlan"})
    assert [charge(limits, HEARTBEAT, "k", T0) for _ in range(21)] == [None] * 20 + ["THROTTLED"]
    assert charge(limits, POLL, "k", T0) is None  # each runner route is its own method
    assert charge(limits, LICENSE, "k", T0) is None  # and the rest of the plan is untouched
    assert [charge(limits, HEARTBEAT, "k", T0 + 1) for _ in range(3)] == [None, None, "THROTTLED"]  # 2 req/s


def test_the_plan_of_the_key_decides() -> None:
    limits = policy({"k": "EnterpriseUsagePlan"})
    assert all(charge(limits, HEARTBEAT, "k", T0) is None for _ in range(2000))
    assert charge(limits, HEARTBEAT, "k", T0) == "THROTTLED"


def test_quota_counts_per_calendar_month() -> None:
    spec = UsagePlanSpec(logical_id="Tiny", name="tiny", quota_limit=3, quota_period="MONTH")
    limits = policy({"k": "Tiny"}, {"Tiny": spec})
    assert [charge(limits, LICENSE, "k", T0) for _ in range(4)] == [None, None, None, "QUOTA_EXCEEDED"]
    next_month = datetime(2030, 6, 1, tzinfo=UTC).timestamp()
    assert charge(limits, LICENSE, "k", next_month - 1) == "QUOTA_EXCEEDED"
    assert charge(limits, LICENSE, "k", next_month) is None


def test_quota_periods_are_utc_calendar_periods() -> None:
    moment = datetime(2030, 5, 17, 15, 30, tzinfo=UTC).timestamp()  # a Friday
    assert quota_period_start(moment, "DAY") == datetime(2030, 5, 17, tzinfo=UTC).timestamp()
    assert quota_period_start(moment, "WEEK") == datetime(2030, 5, 12, tzinfo=UTC).timestamp()  # Sunday
    assert quota_period_start(moment, "MONTH") == datetime(2030, 5, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("key", [None, "not-in-any-plan"])
def test_no_key_or_a_key_in_no_plan_is_invalid_api_key(key: str | None) -> None:
    assert charge(policy({}), LICENSE, key, T0) == "INVALID_API_KEY"
    refusal = policy({}).after_authorizer(request(LICENSE, T0), LICENSE, None)
    assert refusal is not None and refusal.response_type == "INVALID_API_KEY"


def test_a_route_without_api_key_required_is_not_metered() -> None:
    open_route = Route(method="GET", path="/open", function_id="F", event_name="Api", authorizer=None)
    assert policy({}).after_authorizer(request(open_route, T0), open_route, None) is None


# -- WAF ---------------------------------------------------------------------------------------------


def test_a_runner_gets_120_requests_per_sliding_minute_on_runner_routes() -> None:
    limits = policy()
    noisy = {"X-Runner-Token": "hgr_noisy"}
    routes_cycle = [HEARTBEAT, POLL, ROUTES[("POST", "/api/runners/jobs/status")]]
    allowed = [
        limits.before_authorizer(request(routes_cycle[i % 3], T0 + i * 0.4, noisy), HEARTBEAT) for i in range(120)
    ]
    assert allowed == [None] * 120
    refusal = limits.before_authorizer(request(HEARTBEAT, T0 + 48, noisy), HEARTBEAT)
    assert refusal is not None and refusal.status == 429 and refusal.headers == {"Retry-After": "60"}
    assert refusal.body is not None and '"rate_limited"' in refusal.body and '"success": false' in refusal.body
    # Another runner, and requests without a runner token (not counted), pass.
    assert limits.before_authorizer(request(HEARTBEAT, T0 + 48, {"X-Runner-Token": "hgr_quiet"}), HEARTBEAT) is None
    assert limits.before_authorizer(request(HEARTBEAT, T0 + 48), HEARTBEAT) is None
    # A minute after the burst's start the oldest requests leave the window (blocked ones counted too).
    assert limits.before_authorizer(request(HEARTBEAT, T0 + 48.5, noisy), HEARTBEAT) is not None
    assert limits.before_authorizer(request(HEARTBEAT, T0 + 109, noisy), HEARTBEAT) is None


def test_user_routes_are_not_counted_by_the_runner_rule() -> None:
    limits = policy()
    headers = {"X-Runner-Token": "hgr_x"}
    assert all(limits.before_authorizer(request(LICENSE, T0, headers), LICENSE) is None for _ in range(200))


def test_register_takes_30_per_minute_per_source_ip() -> None:
    limits = policy()
    results = [limits.before_authorizer(request(REGISTER, T0 + i, ip="192.0.2.1"), REGISTER) for i in range(31)]
    assert results[:30] == [None] * 30
    refusal = results[30]
    assert refusal is not None and refusal.status == 429 and refusal.body is not None
    assert '"success"' not in refusal.body and '"rate_limited"' in refusal.body  # the /v1 dialect
    assert limits.before_authorizer(request(REGISTER, T0 + 31, ip="192.0.2.2"), REGISTER) is None
    assert limits.before_authorizer(request(REGISTER, T0 + 91, ip="192.0.2.1"), REGISTER) is None


def test_limits_can_be_turned_off_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANGAR_LOCAL_LIMITS", "off")
    assert isinstance(policy_for(TEMPLATE), AllowAll)
