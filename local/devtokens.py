"""Dev credentials for the local stack: HS256 JWTs signed with the local secret, and a dev API key."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from hangar.core import clock
from hangar.identity.auth import OPERATOR_SCOPES, SCOPES

LOCAL_JWT_SECRET = "hangar-local-dev-secret-not-for-production"
LOCAL_JWT_ISSUER = "hangar-local"
LOCAL_JWT_AUDIENCE = "hangar"

ALL_SCOPES = SCOPES
API_KEY_SCOPES = tuple(scope for scope in ALL_SCOPES if scope not in OPERATOR_SCOPES)
"""An API key never carries the operator scope (DESIGN §2)."""


def local_jwt_secret() -> str:
    """HANGAR_JWT_SECRET, or the documented local default."""
    return os.environ.get("HANGAR_JWT_SECRET") or LOCAL_JWT_SECRET


def _scope_list(scopes: str | Iterable[str]) -> list[str]:
    if isinstance(scopes, str):
        return scopes.split()
    return [part for scope in scopes for part in str(scope).split()]


def mint_dev_jwt(
    org: str,
    scopes: str | Iterable[str],
    sub: str | None = None,
    ttl: int = 86400,
    secret: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 JWT the local user authorizer accepts: iss hangar-local, aud hangar, `org` and `scope`.

    `scopes` is a space-separated string or an iterable of scopes. The authorizer checks `exp`/`nbf`/
    `iat` on the server's clock (`hangar.core.clock`, which `POST /_local/clock` moves): `now` is that
    clock's time when the caller knows it, else this process's clock.
    """
    issued = int(now if now is not None else clock.now())
    claims: dict[str, Any] = {
        "sub": sub or f"dev@{org}",
        "org": org,
        "scope": " ".join(_scope_list(scopes)),
        "iss": LOCAL_JWT_ISSUER,
        "aud": LOCAL_JWT_AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl),
    }
    return jwt.encode(claims, secret or local_jwt_secret(), algorithm="HS256")


def mint_dev_api_key(org: str = "demo") -> str:
    """A dev API key made by the real domain code (after the local environment is in place)."""
    from hangar.tenancy import api_keys

    return api_keys.create_api_key(
        org_id=org, name="local dev key", scopes=list(API_KEY_SCOPES), created_by="local"
    ).token


@dataclass(frozen=True)
class SignIn:
    """Which JWTs `make run` accepts: the dev HS256 secret, or an issuer's (HANGAR_JWT_JWKS_URL, ...)."""

    environment: dict[str, str]  # the functions' JWT_* variables
    issuer_mode: bool

    def banner(self) -> list[str]:
        env = self.environment
        if not self.issuer_mode:
            return [f"  Sign-in: dev HS256 secret (HANGAR_JWT_SECRET); issuer {env['JWT_ISSUER']}, audience hangar"]
        return [
            f"  Sign-in: JWTs from {env['JWT_ISSUER']} (JWKS {env['JWT_JWKS_URL']}, {env['JWT_ALGORITHMS']}, "
            f"audience {env['JWT_AUDIENCE']}); the dev JWT is off",
            "    Get an access token from that issuer for this audience, with the tenant in its `org` claim",
            "    and the scopes in `scope`, and send it as `Authorization: Bearer <token>` (see the README).",
        ]


def sign_in(environ: Mapping[str, str] | None = None) -> SignIn:
    """HANGAR_JWT_JWKS_URL (with HANGAR_JWT_ISSUER; HANGAR_JWT_AUDIENCE default hangar, HANGAR_JWT_ALGORITHMS
    default RS256) switches from the dev secret to that issuer; a partial setting is a start-up error."""
    environ = os.environ if environ is None else environ
    jwks_url = environ.get("HANGAR_JWT_JWKS_URL", "")
    given = [
        name for name in ("HANGAR_JWT_ISSUER", "HANGAR_JWT_AUDIENCE", "HANGAR_JWT_ALGORITHMS") if environ.get(name)
    ]
    if not jwks_url:
        if given:
            raise ValueError(f"{', '.join(given)} need HANGAR_JWT_JWKS_URL (the issuer's JWKS URL)")
        secret = local_jwt_secret()
        dev = {"JWT_ALGORITHMS": "HS256", "JWT_SECRET": secret, "JWT_ISSUER": LOCAL_JWT_ISSUER}
        return SignIn({**dev, "JWT_AUDIENCE": LOCAL_JWT_AUDIENCE}, issuer_mode=False)
    if not environ.get("HANGAR_JWT_ISSUER"):
        raise ValueError("HANGAR_JWT_JWKS_URL needs HANGAR_JWT_ISSUER (the `iss` its tokens carry)")
    return SignIn(
        {
            "JWT_JWKS_URL": jwks_url,
            "JWT_ISSUER": environ["HANGAR_JWT_ISSUER"],
            "JWT_AUDIENCE": environ.get("HANGAR_JWT_AUDIENCE") or LOCAL_JWT_AUDIENCE,
            "JWT_ALGORITHMS": environ.get("HANGAR_JWT_ALGORITHMS") or "RS256",
        },
        issuer_mode=True,
    )
