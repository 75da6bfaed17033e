"""What the gateway's checks see of a request and what they decide: an authorizer's grant, a refusal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
    authorizer_context: Mapping[str, Any] = field(default_factory=dict)  # a Deny's: $context.authorizer.*
