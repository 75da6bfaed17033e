"""Enrollment: one-time `hge_` tokens a user creates, which a runner exchanges once for its own
`hgr_` runner token (POST /v1/runners/register).

An enrollment token lives `Settings.enrollment_token_ttl_seconds` (30 minutes) unless the user asks for
`ttlSeconds` (60 s to 24 h). Its expiry is checked on every use against `hangar.core.clock`; the Tokens
table's TTL only deletes it, days later. It is single-use under any concurrency: marking it used is
one of the operations of the transaction that creates the runner, conditional on it being unused.
"""

from __future__ import annotations

import hmac
from typing import Any

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Conflict, Unauthorized
from hangar.fleet import runners
from hangar.fleet.models.enrollment import EnrollmentToken, RegisteredRunner, RegisterRunnerRequest
from hangar.identity import tokens
from hangar.identity.credentials import hash_token
from hangar.identity.tokens import TokenType
from hangar.store import enrollment as enrollment_store
from hangar.store import orgs
from hangar.store import tokens as token_store
from hangar.store.dynamo import Item
from hangar.store.orgs import Org
from hangar.store.runners import Runner
from hangar.store.transactions import TransactionCancelled
from hangar.tenancy import limits
from hangar.tenancy.ratelimit import enforce_rate_limit


def token_invalid() -> Unauthorized:
    return Unauthorized("Enrollment token is not valid", code="token_invalid")


def raise_unless_room_for_runner(org: Org) -> None:
    """403 license_inactive / runner_limit_reached when the org could not take one more runner now."""
    limit = org.runner_limit if org.runner_limit is not None else org.license().runnerLimit
    if org.license_state != "active" or org.runner_count >= limit:
        runners.raise_for_org_refusal(org)


def create_enrollment_token(org_id: str, created_by: str, name: str | None, ttl_seconds: int | None) -> EnrollmentToken:
    """A new enrollment token (plaintext returned once, stored only as a hash).

    Refused up front when the org has no room for another runner, so nobody hands out a token that
    can only fail; the slot itself is reserved at registration."""
    org = orgs.ensure_org(org_id)
    raise_unless_room_for_runner(org)
    enforce_rate_limit(org_id, limits.ENROLLMENT_TOKENS_LIMIT_NAME, limits.ENROLLMENT_TOKENS_PER_HOUR, limits.HOUR)
    ttl = ttl_seconds or get_settings().enrollment_token_ttl_seconds
    token = tokens.mint(TokenType.ENROLLMENT)
    now = clock.now()
    expires_epoch = int(now) + ttl
    expires_at = clock.iso(expires_epoch)
    enrollment_store.put_enrollment_token(
        {
            "tokenId": token.token_id,
            "kind": "enrollment",
            "hash": hash_token(token.raw),
            "orgId": org_id,
            "name": name,
            "expiresAt": expires_at,
            "expiresAtEpoch": expires_epoch,
            "createdBy": created_by,
            "createdAt": clock.iso(now),
            # The runner token minted at registration carries the tenant's usage-plan key; keeping it
            # here saves the registration a read of the org (unless it is a shared key, which the
            # tenant may leave for its own before the token is used).
            "usageKey": org.usage_key,
            "usageKeyShared": bool(org.usage_key_shared) or None,
        },
        also={"audit": audit.operation("enrollment_token.create", org_id, "enrollment_token", token.token_id)},
    )
    return EnrollmentToken(token=token.raw, tokenPrefix=token.token_id, expiresAt=expires_at)


def raise_unless_usable(item: Item | None, token_hash: str, now: float) -> Item:
    """The enrollment token item if it can be exchanged now; otherwise 401 token_invalid, token_used or
    token_expired (in that order: a used token that has since expired reads as used)."""
    if (
        item is None
        or item.get("kind") != "enrollment"
        or not hmac.compare_digest(str(item.get("hash", "")), token_hash)
    ):
        raise token_invalid()
    if item.get("usedAt"):
        raise Unauthorized("Enrollment token was already used", code="token_used")
    if float(item.get("expiresAtEpoch", 0)) <= now:
        raise Unauthorized(f"Enrollment token expired at {item.get('expiresAt')}", code="token_expired")
    return item


def default_runner_name(runner_id: str) -> str:
    return "runner-" + runner_id.removeprefix("rnr_")[:8]


def register_runner(request: RegisterRunnerRequest) -> tuple[Runner, str]:
    """Exchanges the enrollment token for a new runner and its runner token, in one transaction:
    mark the token used, reserve the org's runner slot, put the runner, put its token.

    Costs one GetItem (to learn the tenant) and one TransactWriteItems. A token of the wrong shape is
    refused before any read."""
    parsed = tokens.parse(request.token, TokenType.ENROLLMENT)
    if parsed is None:
        raise token_invalid()
    token_hash = hash_token(parsed.raw)
    item = raise_unless_usable(token_store.get_token(parsed.token_id), token_hash, clock.now())
    org_id = str(item["orgId"])
    runner_id = runners.new_runner_id()
    reported: dict[str, Any] = {
        "version": request.version,
        "container_engine": request.containerEngine,
        "capabilities": request.capabilities,
        "provider_state": request.providerState,
    }
    new = runners.prepare_runner(
        org_id,
        request.name or item.get("name") or default_runner_name(runner_id),
        request.labels,
        request.configuredConcurrency,
        usage_key=orgs.usage_key(org_id) if item.get("usageKeyShared") else item.get("usageKey"),
        runner_id=runner_id,
        reported=reported,
    )
    use_token = enrollment_store.use_enrollment_token_op(
        parsed.token_id, token_hash, clock.now(), clock.iso(), runner_id
    )
    # The runner is the actor of its own registration (the enrollment token vouched for it).
    registered = audit.operation("runner.register", org_id, "runner", runner_id, actor=audit.Actor("runner", runner_id))
    try:
        runners.commit_runner(new, org=None, preceding={"enrollment": use_token, "audit": registered})
    except TransactionCancelled as cancelled:
        if cancelled["enrollment"].ok:
            raise
        # Another registration got there first, or the token expired meanwhile: its state says which.
        raise_unless_usable(
            cancelled["enrollment"].item or token_store.get_token(parsed.token_id), token_hash, clock.now()
        )
        raise Conflict(
            "The enrollment token is being used by a concurrent registration; try again", code="token_busy"
        ) from None
    return new.runner, new.token


def registered_view(runner: Runner, token: str) -> RegisteredRunner:
    """POST /v1/runners/register: the new runner, its token (shown this once) and when to call."""
    settings = get_settings()
    return RegisteredRunner(
        runner=runners.v1_view(runner),
        token=token,
        heartbeatIntervalSeconds=settings.heartbeat_interval_seconds,
        pollIntervalSeconds=settings.poll_interval_seconds,
    )
