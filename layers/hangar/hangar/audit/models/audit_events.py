"""The audit log's views (GET /v1/audit-events)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hangar.audit.trail import ACTIONS, ActorType, TargetType
from hangar.core.models import View

# The query parameter: checked against hangar.audit.trail.ACTIONS by the domain (so its error names `action`);
# the documented schema lists the actions there are.
ActionFilter = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"enum": list(ACTIONS)})]
Since = Annotated[str, Field(min_length=1, max_length=64, examples=["2026-12-01T09:30:00Z"])]


class AuditActor(View):
    """Who: a JWT's `sub`, an API key's id, a runner's id, or the operator acting on a tenant."""

    type: ActorType
    id: str


class AuditTarget(View):
    """What was changed (ids only; never a token or key value)."""

    type: TargetType
    id: str


class AuditEvent(View):
    id: str
    action: Annotated[str, Field(json_schema_extra={"enum": list(ACTIONS)})]
    actor: AuditActor
    target: AuditTarget
    orgId: str
    at: str
    # Null only for a change no request made (an operator's tooling).
    sourceIp: str | None = None
    # API Gateway's request id: the x-amzn-RequestId header of the response to that request.
    requestId: str | None = None


class AuditEventList(View):
    events: list[AuditEvent]
    nextCursor: str | None = None
