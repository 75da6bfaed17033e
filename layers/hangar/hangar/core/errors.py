"""Domain errors. Each carries its HTTP status; `hangar.api.http` is the one place that renders them."""

from __future__ import annotations

from typing import Any


class HangarError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        # Extra members of the error object a route documents (e.g. the log's `nextSeq` on a conflict).
        self.details = dict(details or {})


class BadRequest(HangarError):
    status = 400
    code = "invalid_request"


class Unauthorized(HangarError):
    status = 401
    code = "unauthorized"


class Forbidden(HangarError):
    status = 403
    code = "forbidden"


class NotFound(HangarError):
    status = 404
    code = "not_found"


class Conflict(HangarError):
    status = 409
    code = "invalid_state"


class PayloadTooLarge(HangarError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HangarError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(HangarError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class MissingScope(Forbidden):
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This credential lacks the '{scope}' scope")
        self.scope = scope
