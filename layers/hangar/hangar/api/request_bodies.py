"""What a request body must be before a route reads it: within its size, JSON, an object, Unicode."""

from __future__ import annotations

import json
import re
from typing import Any

from hangar.api.errors import JSON
from hangar.core.errors import BadRequest, HangarError, UnsupportedMediaType

MAX_BODY_BYTES = 64 * 1024


# A \u escape of a UTF-16 surrogate (D800–DFFF): only then can a parsed string fail to be Unicode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _not_unicode(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first string (or object key) holding a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path
        return None
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and _not_unicode(key) is not None:
            return path
        found = _not_unicode(item, (*path, str(key)))
        if found is not None:
            return found
    return None


def parse_json_body(text: str) -> Any:
    """A request body as the resolver reads it: JSON whose top level is an object, as every Hangar
    request body is. NaN and Infinity parse (as Python's json does) so that the field holding one is
    the one refused, by its model or `jobs.bounded_json`. A string escaping a lone UTF-16 surrogate
    ("\\ud800") is valid JSON text but no Unicode, which nothing downstream (DynamoDB, UTF-8) can hold:
    refused here for every route, naming its field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise  # the resolver reports it as `Request body is not valid JSON`
    except (ValueError, RecursionError):
        # An integer past Python's digit limit, nesting deeper than the parser goes: no body Hangar takes.
        raise BadRequest("Request body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object", field="body")
    if _SURROGATE_ESCAPE.search(text):
        path = _not_unicode(data)
        if path is not None:
            field = ".".join(path) or "body"
            raise BadRequest(f"{field}: a lone UTF-16 surrogate (\\ud800-\\udfff) is not Unicode", field=field)
    return data


def media_type_refusal(event: dict[str, Any]) -> HangarError | None:
    """A body must be JSON: a request that sends one as anything else (a form, text) gets 415 rather than
    a misleading field error. No Content-Type is read as JSON, as clients that omit it mean."""
    if not event.get("body"):
        return None
    headers = event.get("headers") or {}
    content_type = next((str(value) for name, value in headers.items() if name.lower() == "content-type"), "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("", JSON):
        return None
    return UnsupportedMediaType(f"Send the body as {JSON}, not {media_type}", field="body")


def body_too_large(event: dict[str, Any], limit: int) -> bool:
    body = event.get("body") or ""
    size = len(body.encode()) if isinstance(body, str) else len(body)
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    return size > limit
