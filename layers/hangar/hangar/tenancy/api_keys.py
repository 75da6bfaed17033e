"""API keys (`hgk_...`): created with a subset of the creator's scopes, shown once, listed, revoked.

An API key is a user credential for scripts and CI: the user authorizer accepts it as
`X-API-Key: hgk_...` or `Authorization: Bearer hgk_...` (hangar.identity.credentials.authenticate_api_key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.errors import BadRequest, Forbidden, NotFound
from hangar.identity import tokens
from hangar.identity.auth import OPERATOR_SCOPES, SCOPES
from hangar.identity.credentials import hash_token
from hangar.identity.tokens import TokenType
from hangar.store import api_keys as api_key_store
from hangar.store.api_keys import ApiKey
from hangar.tenancy import limits
from hangar.tenancy.models.api_keys import ApiKeyView, CreatedApiKeyView
from hangar.tenancy.ratelimit import enforce_rate_limit

_TOKEN_ID = re.compile(rf"^[0-9a-f]{{{tokens.ID_LENGTH}}}$")


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key; `token` is the only copy of the plaintext there will ever be."""

    id: str
    name: str
    scopes: list[str]
    token: str
    created_at: str

    @property
    def token_prefix(self) -> str:
        return self.id


def grantable_scopes(scopes: list[str], creator_scopes: frozenset[str] | None) -> list[str]:
    """The scopes a new key gets, or why not: known scopes only (400), never the operator scope and
    never one the creator lacks (403). `creator_scopes` None means a trusted caller (local dev setup)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadRequest(f"Unknown scope(s): {', '.join(unknown)}", field="scopes")
    if not scopes:
        raise BadRequest("At least one scope is required", field="scopes")
    if set(scopes) & OPERATOR_SCOPES:
        raise Forbidden(
            "API keys cannot carry the operator scope admin:licenses", code="scope_not_grantable", field="scopes"
        )
    if creator_scopes is not None:
        wider = sorted(set(scopes) - creator_scopes)
        if wider:
            raise Forbidden(
                f"A key cannot have scopes its creator lacks: {', '.join(wider)}",
                code="scope_escalation",
                field="scopes",
            )
    return [scope for scope in SCOPES if scope in scopes]


def create_api_key(
    org_id: str, name: str, scopes: list[str], created_by: str, creator_scopes: frozenset[str] | None = None
) -> CreatedApiKey:
    """A new API key for the tenant; stored only as an HMAC, listed through the ApiKeysByOrg index."""
    granted = grantable_scopes(scopes, creator_scopes)
    enforce_rate_limit(org_id, limits.API_KEYS_LIMIT_NAME, limits.API_KEYS_PER_HOUR, limits.HOUR)
    token = tokens.mint(TokenType.API_KEY)
    created_at = clock.iso()
    api_key_store.put_api_key(
        ApiKey(
            token_id=token.token_id,
            kind="apikey",
            hash=hash_token(token.raw),
            org_id=org_id,
            api_key_org=org_id,
            name=name,
            scopes=tuple(granted),
            created_by=created_by,
            created_at=created_at,
        ),
        also={"audit": audit.operation("api_key.create", org_id, "api_key", token.token_id)},
    )
    return CreatedApiKey(id=token.token_id, name=name, scopes=granted, token=token.raw, created_at=created_at)


def view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.token_id,
        name=key.name,
        scopes=list(key.scopes),
        tokenPrefix=key.token_id,
        createdAt=key.created_at,
        lastUsedAt=key.last_used_at,
    )


def created_view(created: CreatedApiKey) -> CreatedApiKeyView:
    """POST /v1/api-keys: the new key with its token, shown this once."""
    return CreatedApiKeyView(
        id=created.id,
        name=created.name,
        scopes=created.scopes,
        tokenPrefix=created.token_prefix,
        token=created.token,
        createdAt=created.created_at,
    )


def list_api_keys(org_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
    return api_key_store.list_api_keys(org_id, limit, cursor)


def delete_api_key(org_id: str, key_id: str) -> None:
    """Revokes the key at once (the user authorizer does not cache). Another tenant's key is a 404."""
    if not _TOKEN_ID.match(key_id) or not api_key_store.delete_api_key(
        org_id, key_id, also={"audit": audit.operation("api_key.delete", org_id, "api_key", key_id)}
    ):
        raise NotFound(f"API key {key_id} not found", field="keyId")
