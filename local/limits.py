"""Rate limits in the local gateway: the hook where usage-plan and per-runner limits plug in.

The gateway consults a `LimitPolicy` twice per API request:

1. `before_authorizer(request, route)` — before any authorizer runs (what API Gateway does for
   account/stage/method throttles and for a WAF rule keyed on a header, such as `X-Runner-Token`).
2. `after_authorizer(request, route, grant)` — once the caller is known: `grant.usage_identifier_key`
   is the API key the authorizer returned (`ApiKeySourceType: AUTHORIZER`), i.e. where usage-plan
   throttles and quotas apply; `grant` is None on routes without an authorizer.

Each returns None to let the request through, or a `Refusal`: a gateway response type (`THROTTLED`,
`QUOTA_EXCEEDED`, `INVALID_API_KEY`, ...) served from the template's GatewayResponses, with extra
headers (e.g. `Retry-After`), or an explicit status/body when a limit answers in the route's own
dialect. Time comes from `request.now` (the local clock, `hangar.clock.now()`, which
`POST /_local/clock` moves).

Also belongs here: API Gateway answers 403 INVALID_API_KEY when a route has `ApiKeyRequired` (see
`route.api_key_required`) and the authorizer returned no usage identifier key, or one that is not an
enabled key in a usage plan of the stage.

`policy_for(template, session)` builds the policy the server uses; today it allows everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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


def policy_for(template: Mapping[str, Any], session: Any = None) -> LimitPolicy:
    """The limit policy for this template (`session`: boto3 session on the local backend, if needed)."""
    return AllowAll()
