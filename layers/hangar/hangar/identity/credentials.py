"""Credential checks that need the Tokens table: API keys and runner tokens (the authorizers' work)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Unauthorized
from hangar.identity import tokens
from hangar.identity.auth import (
    RunnerPrincipal,
    UserPrincipal,
    credential_from_headers,
    parse_api_key,
    parse_runner_token,
    principal_from_claims,
    require_current_runner_token,
    verify_jwt,
)
from hangar.store import api_keys as api_key_store
from hangar.store import runners as runner_store
from hangar.store import tokens as token_store
from hangar.store.runners import Runner


@lru_cache(maxsize=1)
def pepper() -> str:
    """The HMAC pepper: TOKEN_PEPPER locally, Secrets Manager (cached by Powertools) in AWS."""
    settings = get_settings()
    if settings.token_pepper.get_secret_value():
        return settings.token_pepper.get_secret_value()
    if settings.token_pepper_secret_id:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(settings.token_pepper_secret_id, max_age=3600)
        return value if isinstance(value, str) else str(value)
    raise RuntimeError("TOKEN_PEPPER or TOKEN_PEPPER_SECRET_ID must be configured")


def hash_token(raw: str) -> str:
    return tokens.token_hash(raw, pepper())


def authenticate_api_key(raw: str) -> UserPrincipal:
    parsed = parse_api_key(raw)
    item = token_store.get_token(parsed.token_id)
    if not item or item.get("kind") != "apikey" or not tokens.verify(raw, str(item.get("hash", "")), pepper()):
        raise Unauthorized("Invalid API key")
    # lastUsedAt, at most once a minute per key: the item just read says whether it is due, so the
    # common case costs no write (and the write, conditional and best effort, never fails the call).
    last_used = item.get("lastUsedAtEpoch")
    now = clock.now()
    if last_used is None or now - float(last_used) >= api_key_store.LAST_USED_GRANULARITY_SECONDS:
        api_key_store.record_api_key_use(parsed.token_id, int(now), clock.iso(now))
    return UserPrincipal(
        org_id=str(item["orgId"]),
        subject=str(item.get("createdBy", "")),
        scopes=frozenset(item.get("scopes") or []),
        kind="apikey",
        key_id=parsed.token_id,
    )


def authenticate_user(headers: Mapping[str, str] | None) -> UserPrincipal:
    kind, credential = credential_from_headers(headers)
    if kind == "apikey":
        return authenticate_api_key(credential)
    return principal_from_claims(verify_jwt(credential))


def authenticate_runner(raw: str | None) -> tuple[RunnerPrincipal, str | None]:
    """The runner and its tenant's usage-plan key, from one read: the token item carries both."""
    parsed = parse_runner_token(raw)
    token = token_store.get_runner_token(parsed.token_id)
    if token is None or not tokens.verify(parsed.raw, token.hash, pepper()):
        raise Unauthorized("Invalid runner token")
    principal = RunnerPrincipal(
        org_id=token.org_id,
        runner_id=token.runner_id,
        token_version=token.token_version,
        token_id=parsed.token_id,
        labels=token.labels,
    )
    return principal, token.usage_key


def current_runner(principal: RunnerPrincipal) -> Runner:
    """The calling runner, read strongly consistent, while the caller's token is still its token; 401
    once the runner is deleted or its token regenerated, even while the authorizer's Allow is cached."""
    return require_current_runner_token(principal, runner_store.get_runner(principal.org_id, principal.runner_id))
