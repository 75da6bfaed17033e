"""API keys: creation request and the two views (the one-time token, and the listing without it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hangar.core.models import Name, StrictModel, View
from hangar.identity.auth import SCOPES

# Scope strings are checked against hangar.identity.auth.SCOPES by the domain (so its error names `scopes`);
# here only their shape and number are bounded, and the documented schema lists the scopes there are.
ScopeName = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"enum": list(SCOPES)})]


class CreateApiKeyRequest(StrictModel):
    name: Name
    scopes: Annotated[list[ScopeName], Field(min_length=1, max_length=16)]


class CreatedApiKeyView(View):
    """POST /v1/api-keys: the `hgk_` token appears here and nowhere else, ever."""

    id: str
    name: str
    scopes: list[str]
    tokenPrefix: str
    token: str
    createdAt: str


class ApiKeyView(View):
    id: str
    name: str
    scopes: list[str]
    tokenPrefix: str
    createdAt: str
    lastUsedAt: str | None = None


class ApiKeyList(View):
    apiKeys: list[ApiKeyView]
    nextCursor: str | None = None
