"""Who is calling: JWT verification, API keys and runner tokens, and the principals they yield.

Authorizers call `authenticate_user` / `authenticate_runner`; handlers read the principal the
authorizer put in the request context (`principal_from_context`) and check scopes themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from hangar import tokens
from hangar.config import Settings, get_settings
from hangar.errors import MissingScope, Unauthorized
from hangar.tokens import TokenType

SCOPES = (
    "runners:read",
    "runners:manage",
    "jobs:read",
    "jobs:manage",
    "targets:read",
    "targets:manage",
    "keys:manage",
    "admin:licenses",
)
READ_SCOPES = frozenset({"runners:read", "jobs:read", "targets:read"})
OPERATOR_SCOPES = frozenset({"admin:licenses"})
ORG_ID_RE = re.compile(r"^[A-Za-z0-9._:@|-]{1,128}$")
JWT_LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class UserPrincipal:
    org_id: str
    subject: str
    scopes: frozenset[str]
    kind: Literal["jwt", "apikey"]
    key_id: str | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise MissingScope(scope)

    def require_any(self, scopes: frozenset[str]) -> None:
        if not self.scopes & scopes:
            raise MissingScope(" or ".join(sorted(scopes)))

    def to_context(self) -> dict[str, str]:
        return {
            "principalType": self.kind,
            "orgId": self.org_id,
            "subject": self.subject,
            "scopes": " ".join(sorted(self.scopes)),
            "keyId": self.key_id or "",
        }


@dataclass(frozen=True)
class RunnerPrincipal:
    org_id: str
    runner_id: str
    token_version: int
    token_id: str
    labels: tuple[str, ...] = field(default=())

    def to_context(self) -> dict[str, str | int]:
        return {
            "principalType": "runner",
            "orgId": self.org_id,
            "runnerId": self.runner_id,
            "tokenVersion": self.token_version,
            "tokenId": self.token_id,
            "labels": ",".join(self.labels),
        }


def runner_token_refused(runner: Mapping[str, Any] | None) -> Unauthorized:
    """Why a runner token the authorizer accepted (its Allow may be cached for minutes) no longer works:
    the runner was deleted, or its token regenerated (the runner's tokenVersion moved past the caller's)."""
    if runner is None:
        return Unauthorized("The runner was deleted; its token no longer works", code="runner_deleted")
    return Unauthorized(
        "The runner token was regenerated; this one no longer works. Use the new token from regenerate-token",
        code="token_regenerated",
    )


def require_current_runner_token(principal: RunnerPrincipal, runner: dict[str, Any] | None) -> dict[str, Any]:
    """The runner, as read strongly consistent, if the caller's token is still its token; else 401."""
    if runner is None or int(runner.get("tokenVersion", 0)) != principal.token_version:
        raise runner_token_refused(runner)
    return runner


def user_from_context(context: Mapping[str, Any] | None) -> UserPrincipal:
    """The user principal the user authorizer placed in requestContext.authorizer."""
    if not context or context.get("principalType") not in ("jwt", "apikey") or not context.get("orgId"):
        raise Unauthorized("Missing or invalid credential")
    return UserPrincipal(
        org_id=str(context["orgId"]),
        subject=str(context.get("subject", "")),
        scopes=frozenset(str(context.get("scopes", "")).split()),
        kind=context["principalType"],
        key_id=str(context.get("keyId") or "") or None,
    )


def runner_from_context(context: Mapping[str, Any] | None) -> RunnerPrincipal:
    """The runner principal the runner authorizer placed in requestContext.authorizer."""
    if not context or context.get("principalType") != "runner" or not context.get("runnerId"):
        raise Unauthorized("Missing or invalid runner token")
    labels = str(context.get("labels") or "")
    return RunnerPrincipal(
        org_id=str(context["orgId"]),
        runner_id=str(context["runnerId"]),
        token_version=int(context.get("tokenVersion", 0)),
        token_id=str(context.get("tokenId", "")),
        labels=tuple(label for label in labels.split(",") if label),
    )


def parse_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from `scope` (space-separated) or `scp` (list or string)."""
    raw: Any = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(item) for item in raw)
    return frozenset()


def jwt_configuration_problem(settings: Settings | None = None) -> str | None:
    """The configuration's problem (Settings.jwt_configuration_problem), logged once per container as
    the configuration error it is: every JWT is refused until it is fixed (API keys still work). The
    user authorizer asks at cold start, so the log says so before the first request."""
    return _logged((settings or get_settings()).jwt_configuration_problem())


@lru_cache(maxsize=8)
def _logged(problem: str | None) -> str | None:
    if problem:
        from hangar.observability import logger

        logger.error("JWT authentication is misconfigured; every JWT is refused", extra={"problem": problem})
    return problem


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> Any:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def verify_jwt(token: str, settings: Settings | None = None) -> dict[str, Any]:
    """Verified claims, or Unauthorized. Algorithms come from configuration, never from the token."""
    # Imported here: only the user authorizer verifies JWTs, and PyJWT + cryptography cost every
    # other function ~70 ms of cold start.
    import jwt

    settings = settings or get_settings()
    if jwt_configuration_problem(settings):
        raise Unauthorized("JWT sign-in is not configured correctly on this deployment; use an API key")
    try:
        if settings.jwt_jwks_url:
            key: Any = _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
        else:
            key = settings.jwt_secret
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=settings.jwt_algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthorized("Invalid or expired token") from None
    return claims


def principal_from_claims(claims: Mapping[str, Any]) -> UserPrincipal:
    subject = str(claims.get("sub") or "")
    org_id = str(claims.get("org") or subject)
    if not subject or not ORG_ID_RE.fullmatch(org_id):
        raise Unauthorized("Token has no usable subject or org")
    return UserPrincipal(org_id=org_id, subject=subject, scopes=parse_scopes(claims) & set(SCOPES), kind="jwt")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def credential_from_headers(headers: Mapping[str, str] | None) -> tuple[Literal["jwt", "apikey"], str]:
    """Which user credential a request carries: Bearer JWT, Bearer hgk_..., or X-API-Key."""
    authorization = _header(headers, "authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return ("apikey", value) if value.startswith(f"{TokenType.API_KEY.value}_") else ("jwt", value)
    api_key = _header(headers, "x-api-key")
    if api_key:
        return "apikey", api_key.strip()
    raise Unauthorized("Missing credential: send Authorization: Bearer <token> or X-API-Key")


def parse_api_key(raw: str) -> tokens.ParsedToken:
    parsed = tokens.parse(raw, TokenType.API_KEY)
    if parsed is None:
        raise Unauthorized("Invalid API key")
    return parsed


def parse_runner_token(raw: str | None) -> tokens.ParsedToken:
    parsed = tokens.parse(raw, TokenType.RUNNER)
    if parsed is None:
        raise Unauthorized("Invalid runner token")
    return parsed
