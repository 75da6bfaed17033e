"""Who is calling: JWT verification, credential parsing, and the principals they yield.

The authorizers authenticate (`hangar.identity.credentials`) and put the principal in the request
context (`to_context`); handlers read it back with `user_from_context` / `runner_from_context` (through
`app.user()` / `app.runner()`, which also check the route's scopes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from hangar.core import clock
from hangar.core.config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, Settings, get_settings
from hangar.core.errors import MissingScope, Unauthorized
from hangar.identity import tokens
from hangar.identity.tokens import TokenType

if TYPE_CHECKING:
    from hangar.store.runners import Runner

SCOPES = (
    "runners:read",
    "runners:manage",
    "jobs:read",
    "jobs:manage",
    "targets:read",
    "targets:manage",
    "keys:manage",
    "webhooks:manage",
    "audit:read",
    "admin:licenses",
)
READ_SCOPES = frozenset({"runners:read", "jobs:read", "targets:read"})
OPERATOR_SCOPES = frozenset({"admin:licenses"})
ORG_ID_RE = re.compile(r"^[A-Za-z0-9._:@|-]{1,128}$")


@dataclass(frozen=True)
class UserPrincipal:
    org_id: str
    subject: str
    scopes: frozenset[str]
    kind: Literal["jwt", "apikey"]
    key_id: str | None = None

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


def runner_token_refused(runner: Runner | Mapping[str, Any] | None) -> Unauthorized:
    """Why a runner token the authorizer accepted (its Allow may be cached for minutes) no longer works:
    the runner was deleted, or its token regenerated (the runner's tokenVersion moved past the caller's)."""
    if runner is None:
        return Unauthorized("The runner was deleted; its token no longer works", code="runner_deleted")
    return Unauthorized(
        "The runner token was regenerated; this one no longer works. Use the new token from regenerate-token",
        code="token_regenerated",
    )


def require_current_runner_token(principal: RunnerPrincipal, runner: Runner | None) -> Runner:
    """The runner, as read strongly consistent, if the caller's token is still its token; else 401."""
    if runner is None or runner.token_version != principal.token_version:
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


def _claim_strings(value: Any) -> list[str]:
    """A claim as a list of strings: a space-separated string, or a list (non-strings in it ignored)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def jwt_configuration_problem(settings: Settings | None = None) -> str | None:
    """The configuration's problem (Settings.jwt_configuration_problem), logged once per container as
    the configuration error it is: every JWT is refused until it is fixed (API keys still work). The
    user authorizer asks at cold start, so the log says so before the first request."""
    return _logged((settings or get_settings()).jwt_configuration_problem())


@lru_cache(maxsize=8)
def _logged(problem: str | None) -> str | None:
    if problem:
        from hangar.core.observability import logger

        logger.error("JWT authentication is misconfigured; every JWT is refused", extra={"problem": problem})
    return problem


def parse_scopes(claims: Mapping[str, Any], settings: Settings | None = None) -> frozenset[str]:
    """Hangar's scopes among the configured scope claims (JWT_SCOPE_CLAIM, default `scope` and `scp`).

    With JWT_SCOPE_PREFIX (Cognito's `<resource server id>/`), only scopes carrying it count, without it.
    """
    settings = settings or get_settings()
    found = {scope for name in settings.jwt_scope_claim for scope in _claim_strings(claims.get(name))}
    prefix = settings.jwt_scope_prefix
    if prefix:
        found = {scope[len(prefix) :] for scope in found if scope.startswith(prefix)}
    return frozenset(found) & frozenset(SCOPES)


def _org_from_claims(claims: Mapping[str, Any], subject: str, settings: Settings) -> str:
    """The tenant: the JWT_ORG_CLAIM claim (a string, or a list of exactly one), else the subject."""
    raw = claims.get(settings.jwt_org_claim)
    if raw is None or raw == "" or raw == []:
        return subject
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not isinstance(raw, str):
        raise Unauthorized(f"Token claim {settings.jwt_org_claim} is not an org id")
    return raw


def accepted_algorithms(settings: Settings) -> list[str]:
    """The configured algorithms this key source can verify: asymmetric ones with a JWKS URL, HMAC
    ones with a shared secret; never a mix (an HMAC "signed" with a published key is a forgery)."""
    if settings.jwt_jwks_url:
        return [alg for alg in settings.jwt_algorithms if alg in ASYMMETRIC_ALGORITHMS]
    return [alg for alg in settings.jwt_algorithms if alg in HMAC_ALGORITHMS]


def _audiences(settings: Settings) -> list[str]:
    return [audience.strip() for audience in settings.jwt_audience.split(",") if audience.strip()]


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"Token claim {name} is not a number")
    return float(value)


def _check_times(claims: Mapping[str, Any], leeway: float) -> None:
    """exp / nbf / iat against `hangar.core.clock` (PyJWT reads the wall clock, which tests cannot move)."""
    now = clock.now()
    expires = _number(claims, "exp")
    if expires is None or expires <= now - leeway:
        raise Unauthorized("Token has expired", code="token_expired")
    for name in ("nbf", "iat"):
        moment = _number(claims, name)
        if moment is not None and moment > now + leeway:
            raise Unauthorized("Token is not valid yet")


def _check_audience_claim(claims: Mapping[str, Any], settings: Settings) -> None:
    """A JWT_AUDIENCE_CLAIM other than `aud` (PyJWT checks `aud` itself): present and one of ours."""
    values = _claim_strings(claims.get(settings.jwt_audience_claim))
    if not set(values) & set(_audiences(settings)):
        raise Unauthorized("Token audience is not accepted")


def _signing_key(header: Mapping[str, Any], settings: Settings) -> Any:
    if not settings.jwt_jwks_url:
        return settings.jwt_secret.get_secret_value()
    from hangar.identity import jwks

    cache = jwks.jwks_cache(settings.jwt_jwks_url, settings.jwt_jwks_cache_seconds, settings.jwt_jwks_timeout_seconds)
    try:
        return cache.signing_key(header.get("kid"))
    except jwks.JwksUnavailable:
        raise Unauthorized(
            "The token issuer's signing keys cannot be fetched right now; retry shortly", code="jwks_unavailable"
        ) from None
    except jwks.UnknownSigningKey:
        raise Unauthorized("Token is signed with a key its issuer does not publish") from None


def verify_jwt(token: str, settings: Settings | None = None) -> dict[str, Any]:
    """Verified claims, or Unauthorized. Algorithms come from configuration, never from the token."""
    # Imported here: only the user authorizer verifies JWTs, and PyJWT + cryptography cost every
    # other function ~70 ms of cold start.
    import jwt

    settings = settings or get_settings()
    if jwt_configuration_problem(settings):
        raise Unauthorized("JWT sign-in is not configured correctly on this deployment; use an API key")
    algorithms = accepted_algorithms(settings)
    audience_in_aud = settings.jwt_audience_claim == "aud"
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in algorithms:
            raise Unauthorized("Token algorithm is not accepted")
        # The issuer is checked before any key look-up, so another issuer's tokens never reach the JWKS.
        if jwt.decode(token, options={"verify_signature": False}).get("iss") != settings.jwt_issuer:
            raise Unauthorized("Token issuer is not accepted")
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(header, settings),
            algorithms=algorithms,
            audience=_audiences(settings) if audience_in_aud else None,
            issuer=settings.jwt_issuer,
            options={
                "require": ["exp", "iss", "sub", *(["aud"] if audience_in_aud else [])],
                "verify_signature": True,
                "verify_aud": audience_in_aud,
                # Times are checked below, on hangar.core.clock, with the configured leeway.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthorized("Invalid token") from None
    _check_times(claims, settings.jwt_leeway_seconds)
    if not audience_in_aud:
        _check_audience_claim(claims, settings)
    return claims


def principal_from_claims(claims: Mapping[str, Any], settings: Settings | None = None) -> UserPrincipal:
    """The user a verified token names: `sub`, the tenant (JWT_ORG_CLAIM, else `sub`) and its scopes."""
    settings = settings or get_settings()
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("Token has no usable subject")
    org_id = _org_from_claims(claims, subject, settings)
    if not ORG_ID_RE.fullmatch(org_id):
        raise Unauthorized(f"Token has no usable org id (claim {settings.jwt_org_claim}, else sub)")
    return UserPrincipal(org_id=org_id, subject=subject, scopes=parse_scopes(claims, settings), kind="jwt")


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
