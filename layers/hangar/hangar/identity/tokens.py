"""Hangar credentials: `<type>_<id>_<secret><checksum>` (docs/architecture.md, "Credentials").

The id is public (shown as `tokenPrefix`) and is the lookup key; the secret never leaves the caller
except once at creation. The checksum lets us refuse typos and junk before any database read, and
only an HMAC of the whole token is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6


class TokenType(StrEnum):
    RUNNER = "hgr"
    ENROLLMENT = "hge"
    API_KEY = "hgk"


_TOKEN_RE = re.compile(
    rf"^(?P<type>hgr|hge|hgk)_(?P<id>[0-9a-f]{{{ID_LENGTH}}})_"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)


@dataclass(frozen=True)
class ParsedToken:
    type: TokenType
    token_id: str
    raw: str


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def mint(token_type: TokenType) -> ParsedToken:
    """A new random token of the given type."""
    token_id = secrets.token_hex(ID_LENGTH // 2)
    secret = "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
    body = f"{token_type.value}_{token_id}_{secret}"
    return ParsedToken(type=token_type, token_id=token_id, raw=body + checksum(body))


def parse(raw: str | None, expected: TokenType | None = None) -> ParsedToken | None:
    """The token if its shape, type and checksum are right; None otherwise (no I/O)."""
    if not raw or len(raw) > 64:
        return None
    match = _TOKEN_RE.match(raw)
    if match is None:
        return None
    body = raw[:-CHECKSUM_LENGTH]
    if not hmac.compare_digest(checksum(body), match["checksum"]):
        return None
    token_type = TokenType(match["type"])
    if expected is not None and token_type is not expected:
        return None
    return ParsedToken(type=token_type, token_id=match["id"], raw=raw)


def token_hash(raw: str, pepper: str) -> str:
    """HMAC-SHA256(pepper, token) as hex: the only form a token is ever stored in."""
    return hmac.new(pepper.encode(), raw.encode(), hashlib.sha256).hexdigest()


def verify(raw: str, stored_hash: str, pepper: str) -> bool:
    return hmac.compare_digest(token_hash(raw, pepper), stored_hash)
