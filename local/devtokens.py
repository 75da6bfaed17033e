"""Dev credentials for the local stack: HS256 JWTs signed with the local secret, and a dev API key."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import jwt
from hangar.auth import OPERATOR_SCOPES, SCOPES

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
) -> str:
    """An HS256 JWT the local user authorizer accepts: iss hangar-local, aud hangar, `org` and `scope`.

    `scopes` is a space-separated string or an iterable of scopes. Times are wall-clock (the JWT
    library checks `exp` against the real clock, not the local stack's shifted one).
    """
    issued = int(time.time())
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


def mint_dev_api_key(org: str = "demo") -> tuple[str | None, str]:
    """A dev API key made by the real domain code (`hangar.api_keys.create_api_key`), or why not.

    Returns (token, note); token is None when the domain module is not available. Must run after the
    local environment is in place (it writes to the local Tokens table).
    """
    from hangar import api_keys

    try:
        created = api_keys.create_api_key(
            org_id=org, name="local dev key", scopes=list(API_KEY_SCOPES), created_by="local"
        )
    except Exception as error:  # the server still starts; the banner says why there is no key
        return None, f"no dev API key: create_api_key failed ({type(error).__name__}: {error})"
    if isinstance(created, tuple | list):
        token = next((part for part in created if isinstance(part, str) and part.startswith("hgk_")), None)
    elif isinstance(created, dict):
        token = created.get("token")
    else:
        token = getattr(created, "token", None)
    if not token:
        return None, "no dev API key: create_api_key returned no token"
    return str(token), "ok"
