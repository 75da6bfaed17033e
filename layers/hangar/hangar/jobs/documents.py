"""A job's JSON documents (payload, result) as stored, and the work fields both dialects' job views share:
a leaf module, so that the agent's routes (poll, status) read them without importing job creation."""

from __future__ import annotations

import json
from typing import Any

from hangar.core.errors import BadRequest, PayloadTooLarge
from hangar.store.jobs import Job

# DynamoDB allows 32 levels of nesting; JSON documents are stored as strings, but keep them sane.
MAX_JSON_DEPTH = 32


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def bounded_json(value: dict[str, Any], max_bytes: int, field: str) -> str:
    """A JSON object as the compact text we store; 413 naming `field` when it is larger than `max_bytes`."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except UnicodeEncodeError:
        # A lone UTF-16 surrogate ("\ud800") is valid JSON text but no Unicode: nothing can store it.
        raise BadRequest(f"{field}: contains a lone UTF-16 surrogate, which is not Unicode", field=field) from None
    except ValueError:
        raise BadRequest(f"{field}: NaN and Infinity are not JSON", field=field) from None
    if size > max_bytes:
        raise PayloadTooLarge(f"{field} is {size} bytes; the limit is {max_bytes // 1024} KiB", field=field)
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"{field}: nested deeper than {MAX_JSON_DEPTH} levels", field=field)
    return text


def parse_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def work_fields(job: Job) -> dict[str, Any]:
    """What a job asks a runner to do: the fields both dialects' job views share."""
    return {
        "type": job.type,
        "repositoryConfig": job.repository_config,
        "repositoryName": job.repository_name,
        "branch": job.branch,
        "targetId": job.target_id,
        "labels": list(job.labels),
        "payload": parse_json(job.payload_json),
        "timeoutSeconds": job.timeout_seconds,
        "maxAttempts": job.max_attempts,
    }
