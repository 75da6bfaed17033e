"""Targets: what a scan is pointed at, and the visibility class the license allows or not."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, HttpUrl, StringConstraints, TypeAdapter, ValidationError, WithJsonSchema

from hangar.core.models import Name, StrictModel, View
from hangar.core.plans import Visibility

MAX_URL_LENGTH = 2048
_NO_SPACE_OR_CONTROL = re.compile(r"^[^\s\x00-\x1f\x7f]+$")
_http_url = TypeAdapter(HttpUrl)


def _check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host, kept exactly as written (no normalising)."""
    if not _NO_SPACE_OR_CONTROL.match(value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parsed = _http_url.validate_python(value)
    except ValidationError:
        raise ValueError("must be an absolute http:// or https:// URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


TargetUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(_check_http_url),
    # Documented: what every accepted URL looks like (the validator also wants a host it can parse).
    WithJsonSchema(
        {"type": "string", "format": "uri", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$", "maxLength": MAX_URL_LENGTH}
    ),
]


class CreateTargetRequest(StrictModel):
    name: Name
    url: TargetUrl
    visibility: Visibility


class TargetView(View):
    id: str
    name: str
    url: str
    visibility: Visibility
    createdAt: str


class TargetList(View):
    targets: list[TargetView]
    nextCursor: str | None = None
