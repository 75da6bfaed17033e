"""The audit log: who changed what, from where, in which request (GET /v1/audit-events).

Every mutating user route and every runner registration writes exactly one audit event, and it is an
operation of the SAME DynamoDB transaction as the change it records: the event exists if and only if
the change committed. A domain function adds one line to the operations it commits:

    operations["audit"] = audit.operation("target.create", org_id, "target", target["targetId"])
    transact(operations)

Who and where are not passed around: `lambda_handler` (hangar.api.http) binds the request once
(`bind_request`), and `operation` takes the actor (JWT `sub`, API key id, runner id), the source IP
and API Gateway's request id — the `x-amzn-RequestId` the response carries — from it. A change made
outside any request (local dev setup) is recorded as the `operator` actor `system`. A route whose change
is a single write today makes it a transaction with this Put (TransactWriteItems takes up to 100 items
across tables). Nothing secret goes in: targets are ids (a token's public prefix, never the token).

Runner heartbeats, polls, status reports and logs are not audited: the job's own history covers them.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from hangar.core import clock
from hangar.core.errors import BadRequest
from hangar.store import audit as audit_store
from hangar.store.dynamo import Item

Action = Literal[
    "runner.create",
    "runner.update",
    "runner.delete",
    "runner.regenerate_token",
    "runner.mark_offline",
    "runner.register",
    "enrollment_token.create",
    "api_key.create",
    "api_key.delete",
    "target.create",
    "target.delete",
    "license.update",
    "webhook.create",
    "webhook.delete",
    "job.create",
    "job.cancel",
]
ACTIONS: tuple[str, ...] = get_args(Action)
ActorType = Literal["jwt", "api_key", "runner", "operator"]
TargetType = Literal["runner", "enrollment_token", "api_key", "target", "org", "webhook", "job"]

RETENTION_DAYS = 365
RETENTION_SECONDS = RETENTION_DAYS * 86400

# The authorizers' principalType (hangar.identity.auth) → the actor type the audit log shows.
_ACTOR_TYPES: dict[str, ActorType] = {"jwt": "jwt", "apikey": "api_key", "runner": "runner"}


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str


@dataclass(frozen=True)
class RequestOrigin:
    """Who made the request and where it came from. `actor` is None for a request no authorizer vouched
    for (registration: its actor is the runner it creates, which the domain names)."""

    actor: Actor | None
    source_ip: str | None
    request_id: str | None


SYSTEM = RequestOrigin(Actor("operator", "system"), None, None)
_origin: ContextVar[RequestOrigin] = ContextVar("hangar_audit_origin", default=SYSTEM)


def origin_of(event: Mapping[str, Any]) -> RequestOrigin:
    """The request's origin from its API Gateway proxy event (the authorizer's context, identity, id)."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    actor_type = _ACTOR_TYPES.get(str(authorizer.get("principalType")))
    actor_id = {
        "jwt": authorizer.get("subject"),
        "api_key": authorizer.get("keyId"),
        "runner": authorizer.get("runnerId"),
    }.get(actor_type or "")
    actor = Actor(actor_type, str(actor_id)) if actor_type and actor_id else None
    source_ip = (context.get("identity") or {}).get("sourceIp")
    request_id = context.get("requestId")
    return RequestOrigin(actor, str(source_ip) if source_ip else None, str(request_id) if request_id else None)


@contextmanager
def bind_request(event: Mapping[str, Any]) -> Iterator[RequestOrigin]:
    """Every audit event written while handling `event` names its actor, source IP and request id."""
    origin = origin_of(event)
    token = _origin.set(origin)
    try:
        yield origin
    finally:
        _origin.reset(token)


def new_event_id() -> str:
    return "aud_" + secrets.token_hex(10)


def operation(
    action: Action,
    org_id: str,
    target_type: TargetType,
    target_id: str,
    *,
    actor: Actor | None = None,
    by_operator: bool = False,
) -> dict[str, Any]:
    """The TransactWriteItems Put recording `action` on the target in `org_id`'s audit log, to commit in
    the same transaction as the change. `actor` overrides the request's (a registration's runner);
    `by_operator` records the request's principal as the `operator` it acts as (admin:licenses)."""
    origin = _origin.get()
    who = actor or origin.actor
    if who is None:
        raise RuntimeError(f"{action}: the request has no actor to audit")  # a defect, never user input
    if by_operator:
        who = Actor("operator", who.id)
    now = clock.now()
    event: Item = {
        "id": new_event_id(),
        "orgId": org_id,
        "action": action,
        "actor": {"type": who.type, "id": who.id},
        "target": {"type": target_type, "id": target_id},
        "at": clock.iso(now),
        "sourceIp": origin.source_ip,
        "requestId": origin.request_id,
        "expiresAtEpoch": math.ceil(now) + RETENTION_SECONDS,
    }
    return audit_store.put_event_op(event)


def since_bound(since: str | None) -> str | None:
    """`since` (ISO 8601: a date, or a date-time; without an offset it is UTC) as the `at` string it
    bounds, rounded up to the millisecond events carry; 400 naming `since` when it is no such time."""
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since.strip())
    except ValueError:
        raise BadRequest(
            "since: not an ISO 8601 time (e.g. 2026-12-01T09:30:00Z or 2026-12-01)", field="since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
        milliseconds = -(-moment.microsecond // 1000)  # rounded up: an event 0.4 ms before `since` is before it
        if milliseconds == 1000:
            moment, milliseconds = moment.replace(microsecond=0) + timedelta(seconds=1), 0
    except (OverflowError, ValueError):
        raise BadRequest("since: the time is out of range", field="since") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds:03d}Z"


def list_events(
    org_id: str, limit: int, cursor: str | None, action: str | None = None, since: str | None = None
) -> tuple[list[Item], str | None]:
    """The tenant's audit events, newest first, optionally one action's and from `since` on."""
    if action is not None and action not in ACTIONS:
        raise BadRequest(f"action: not an audited action ({', '.join(ACTIONS)})", field="action")
    return audit_store.list_events(
        org_id, limit, cursor, action=action, since=since_bound(since), not_expired_at=int(clock.now())
    )
