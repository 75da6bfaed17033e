"""Fuzzing `python -m local` with schemathesis, from docs/openapi.json as the server itself serves it.

Two runs of schemathesis's engine (the one its CLI drives: examples, coverage and fuzzing phases, on
valid and invalid data) over the documented operations, against a server of this module's own:

1. Full access, every operation. Credentials go where each operation's security says: a dev JWT
   with every scope for a fresh org (moved to the enterprise plan first, so the free plan's single
   runner does not hide the success paths) as the bearer, that org's runner token in
   `X-Runner-Token` and in the install script's `?token=`; registration needs none (its `hge_` token
   is in the body).
2. Read-only: user routes only, with a JWT holding `runners:read jobs:read targets:read` for another
   org, which holds a runner, a target and a job to read.

Checks: not_a_server_error, status_code_conformance, response_schema_conformance,
negative_data_rejection, and `scope_enforcement` (below): a user route whose documented scopes the
bearer lacks answers 403 `insufficient_scope` to whatever was sent (the scope is checked before the
input is read), and a route whose scope it holds never does. In the read-only run every manage route
is asserted to have been refused that way.

The server runs with HANGAR_LOCAL_LIMITS=off. With the limits on every response would still conform
(429 and Retry-After are documented on every operation), but the usage plans and WAF rules would
answer most of a run with 429 and hide what the handlers do; tests/e2e/test_rate_limits_e2e.py covers
the limits. The limits the domain counts itself (`hangar.tenancy.limits`: regenerate-token, API keys, ...) stay on.

Bounded for `make test` (well under three minutes on two cores): HANGAR_FUZZ_EXAMPLES examples per
operation in the fuzzing phase (default 25; about 45 s in all), with a fixed seed so a run is reproducible; set
HANGAR_FUZZ_SEED to another number (and raise HANGAR_FUZZ_EXAMPLES) to explore.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hangar.identity.auth import READ_SCOPES
from schemathesis.engine import events, from_schema

from local.devtokens import ALL_SCOPES
from local.testing import LocalApi, start_local_api, unique_org

pytestmark = [pytest.mark.slow]

MAX_EXAMPLES = int(os.environ.get("HANGAR_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("HANGAR_FUZZ_SEED", "7"))
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "scope_enforcement",
)


def user_scopes(operation: schemathesis.APIOperation) -> frozenset[str]:
    """The scopes a user route documents on its bearer scheme (any one will do); empty for other routes."""
    requirements = operation.definition.raw.get("security") or []
    return frozenset(scope for requirement in requirements for scope in requirement.get("bearerAuth", []))


def is_user_route(operation: schemathesis.APIOperation) -> bool:
    return any("bearerAuth" in requirement for requirement in operation.definition.raw.get("security") or [])


def _bearer_scopes(headers: Any) -> frozenset[str] | None:
    """The scopes of the JWT sent as the bearer (read, not verified: the test minted it), or None."""
    value = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    authorization = str(value[0] if isinstance(value, list) else value)
    if not authorization.startswith("Bearer ") or authorization.count(".") != 2:
        return None
    payload = authorization.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return frozenset(str(claims.get("scope", "")).split())


@schemathesis.check
def scope_enforcement(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A user route refuses a bearer without its documented scope with 403 insufficient_scope, whatever
    the request holds, and never refuses one with it that way."""
    needed = user_scopes(case.operation)
    held = _bearer_scopes(response.request.headers)
    if not needed or held is None or response.request.method != case.operation.method.upper():
        return  # not a user route, not a JWT, or a method the route lacks (the coverage phase tries some)
    refused = response.status_code == 403 and _error_code(response) == "insufficient_scope"
    if needed & held:
        assert not refused, f"{case.operation.label} refused a token holding one of {sorted(needed)}"
    else:
        assert refused, (
            f"{case.operation.label} needs one of {sorted(needed)} but answered {response.status_code} "
            f"to a token with only {sorted(held)}: {response.text[:300]}"
        )


def _error_code(response: schemathesis.Response) -> str | None:
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


@dataclass
class FuzzReport:
    """What one engine run did: failures (as text), statuses per operation (its own method; other methods
    the coverage phase tried are counted apart), errors, time taken."""

    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    other_methods: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(sum(counter.values()) for counter in self.statuses.values()) + sum(self.other_methods.values())

    def summary(self) -> str:
        lines = [f"{self.requests} requests in {self.seconds:.1f} s"]
        if self.other_methods:
            lines.append(f"  methods no route has: {dict(sorted(self.other_methods.items()))}")
        for label in sorted(self.statuses):
            counts = ", ".join(f"{status}×{n}" for status, n in sorted(self.statuses[label].items()))
            lines.append(f"  {label}: {counts}")
        return "\n".join(lines)


def run_engine(schema: Any) -> FuzzReport:
    report = FuzzReport()
    started = time.monotonic()
    seen_failures: set[tuple[str, str]] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            method = recorder.label.split(" ", 1)[0]
            for interaction in recorder.interactions.values():
                if interaction.response is None:
                    continue
                if interaction.request.method == method:
                    report.statuses[recorder.label][interaction.response.status_code] += 1
                else:
                    report.other_methods[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    key = (recorder.label, f"{check.name}: {failure.title}")
                    if key in seen_failures:
                        continue
                    seen_failures.add(key)
                    report.failures.append(
                        f"{recorder.label} [{check.name}] {failure.title}\n{failure.message}\n"
                        f"{check.failure_info.code_sample}\n(case {case_id})"
                    )
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            report.failures.extend(f"{fail.operation}: {fail.title}\n{fail.message}" for fail in event.failures)
    report.seconds = time.monotonic() - started
    return report


def load_schema(api: LocalApi, auth: dict[str, Any], user_routes_only: bool = False) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "base-url": api.url,
            "seed": SEED,
            "workers": 2,
            "request-timeout": 30,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                # Credentials come from `auth`, per operation: no made-up security parameters.
                "with-security-parameters": False,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECK_NAMES}},
            "auth": {"openapi": auth},
        }
    )
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json", config=config)
    return schema.include(lambda ctx: is_user_route(ctx.operation)) if user_routes_only else schema


@pytest.fixture(scope="module")
def fuzz_api() -> Iterator[LocalApi]:
    api = start_local_api(extra_env={"HANGAR_LOCAL_LIMITS": "off"}, timeout=60)
    try:
        yield api
    finally:
        api.stop()


@dataclass
class FuzzOrg:
    org: str
    full_jwt: str
    runner_token: str


@pytest.fixture(scope="module")
def fuzz_org(fuzz_api: LocalApi) -> FuzzOrg:
    org = unique_org("fuzz")
    jwt = fuzz_api.jwt(org, ALL_SCOPES)
    status, _, body = fuzz_api.call("PUT", f"/v1/orgs/{org}/license", token=jwt, json={"plan": "enterprise"})
    assert status == 200, body
    status, _, body = fuzz_api.call("POST", "/api/runners", token=jwt, json={"name": "fuzz", "labels": ["fuzz"]})
    assert status == 201, body
    return FuzzOrg(org=org, full_jwt=jwt, runner_token=body["data"]["token"])


@pytest.fixture(scope="module")
def read_only_jwt(fuzz_api: LocalApi) -> str:
    """A read-only JWT for an org of its own (the full-access run may change its org's license), which
    holds a runner, a target and a job to read."""
    org = unique_org("fuzz-ro")
    jwt = fuzz_api.jwt(org, ALL_SCOPES)
    for path, body in [
        ("/api/runners", {"name": "readable", "labels": ["fuzz"]}),
        ("/v1/targets", {"name": "readable", "url": "https://example.com", "visibility": "public"}),
        ("/v1/jobs", {"type": "scan", "labels": ["fuzz"]}),
    ]:
        status, _, created = fuzz_api.call("POST", path, token=jwt, json=body)
        assert status == 201, (path, created)
    return fuzz_api.jwt(org, READ_SCOPES)


def _assert_clean(report: FuzzReport) -> None:
    print(report.summary())
    assert not report.errors, "\n\n".join(report.errors)
    assert not report.failures, f"{len(report.failures)} failure(s):\n\n" + "\n\n".join(report.failures)
    statuses = [status for counter in [*report.statuses.values(), report.other_methods] for status in counter]
    assert not [status for status in statuses if status >= 500]


def documented_scopes(schema: Any) -> dict[str, frozenset[str]]:
    """Every operation's label ("POST /v1/jobs") and the scopes it documents (empty: not a user route)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    return {operation.label: user_scopes(operation) for operation in operations}


def test_every_operation_with_full_access(fuzz_api: LocalApi, fuzz_org: FuzzOrg) -> None:
    auth = {
        "bearerAuth": {"bearer": fuzz_org.full_jwt},
        "runnerToken": {"api_key": fuzz_org.runner_token},
        "installToken": {"api_key": fuzz_org.runner_token},
    }
    schema = load_schema(fuzz_api, auth)
    report = run_engine(schema)
    _assert_clean(report)
    assert set(report.statuses) == set(documented_scopes(schema)), "some operations were never called"


def test_read_only_token_is_refused_every_manage_route(fuzz_api: LocalApi, read_only_jwt: str) -> None:
    schema = load_schema(fuzz_api, {"bearerAuth": {"bearer": read_only_jwt}}, user_routes_only=True)
    report = run_engine(schema)
    _assert_clean(report)
    # scope_enforcement checked every response; this is the run as a whole: each route called, every
    # manage route refused to everything it was sent, no read route refused for want of a scope.
    scopes = documented_scopes(schema)
    assert set(report.statuses) == set(scopes)
    manage = {label for label, needed in scopes.items() if not needed & READ_SCOPES}
    assert {"POST /api/runners", "GET /v1/api-keys", "PUT /v1/orgs/{orgId}/license"} <= manage, sorted(manage)
    for label, statuses in report.statuses.items():
        if label in manage:
            assert set(statuses) == {403}, (label, statuses)
        else:
            assert 403 not in statuses, (label, statuses)


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT"])
def test_a_method_no_route_has_is_the_gateways_404(fuzz_api: LocalApi, method: str) -> None:
    """The coverage phase's first find: http.server answered these 501 before the gateway saw them."""
    status, _, body = fuzz_api.call(method, "/api/runners")
    assert status == 404, body
    assert body["error"]["code"] == "not_found"
