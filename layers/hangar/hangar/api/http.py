"""HTTP glue: the resolver every API handler uses, CORS, and the Lambda entry point (error bodies are
in `api/errors.py`, what a request body must be in `api/request_bodies.py`).

Every API handler module does the same three things: `app = api_app()` or `v1_app()`, one route on it,
and `handler = lambda_handler(app)`. Everything else here is shared so handlers stay thin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import create_model

from hangar.api.errors import (
    CONFLICT,
    ERROR_STATUSES,
    JSON,
    ApiErrorBody,
    Dialect,
    V1ErrorBody,
    compact_json,
    error_response,
    field_of,
    validation_message,
)
from hangar.api.request_bodies import MAX_BODY_BYTES, body_too_large, media_type_refusal, parse_json_body
from hangar.audit import trail as audit
from hangar.core.config import get_settings
from hangar.core.errors import BadRequest, HangarError, NotFound, PayloadTooLarge, UnsupportedMediaType
from hangar.core.models import plain
from hangar.core.observability import logger, metrics
from hangar.identity.auth import RunnerPrincipal, UserPrincipal, runner_from_context, user_from_context

# CORS for the console (a browser on CORS_ALLOWED_ORIGIN): what it may send and read. template.yaml's
# preflight (the API's Cors) and gateway responses say the same for what API Gateway answers itself.
CORS_REQUEST_HEADERS = ["Idempotency-Key"]  # besides Authorization, Content-Type, X-Api-Key (Powertools' own)
CORS_EXPOSED_HEADERS = ["Retry-After", "x-amzn-RequestId"]
CORS_MAX_AGE_SECONDS = 600

# OpenAPI placeholder security scheme for a user route's scopes: docs generation (local/openapi.py)
# puts them on each of the user authorizer's schemes (OpenAPI 3.1 lets any scheme list role names).
USER_SCOPES_SCHEME = "userScopes"


# Powertools keeps the event being resolved (and its Lambda context) on the BaseRouter class: one
# invocation per process in Lambda, but a process serving invocations on several threads (local/, where
# each function instance serves one request at a time) let a request read another's event, principal
# included. Each thread resolves with its own.
_invocation = threading.local()


class HangarResolver(APIGatewayRestResolver):
    """A REST resolver that knows its response dialect."""

    @property
    def current_event(self) -> Any:
        return _invocation.event

    @current_event.setter
    def current_event(self, value: Any) -> None:
        _invocation.event = value

    @property
    def lambda_context(self) -> Any:
        return _invocation.context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        _invocation.context = value

    def _to_proxy_event(self, event: dict[str, Any]) -> Any:
        proxy = super()._to_proxy_event(event)
        _invocation.event = proxy  # what resolve() then stores on the class, for this thread only
        return proxy

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        _invocation.context = context
        return super().resolve(event, context)

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(enable_validation=True, serializer=compact_json, json_body_deserializer=parse_json_body)
        self.dialect = dialect
        self.required_scopes: frozenset[str] = frozenset()

        @self.exception_handler(HangarError)  # type: ignore[untyped-decorator]
        def _domain_error(error: HangarError) -> Response[str]:
            return error_response(self.dialect, error)

        @self.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
        def _invalid_request(error: RequestValidationError) -> Response[str]:
            first: dict[str, Any] = dict(error.errors()[0]) if error.errors() else {}
            field = "body" if first.get("type") == "json_invalid" else field_of(first.get("loc", ()))
            return error_response(self.dialect, BadRequest(validation_message(first, field), field=field))

        @self.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
        def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
            # Only a JSON type spelt in capitals gets past `media_type_refusal` to the resolver's own check.
            return error_response(self.dialect, UnsupportedMediaType(f"Send the body as {JSON}", field="body"))

        @self.not_found
        def _no_route(_: NotFoundError) -> Response[str]:
            return error_response(self.dialect, NotFound("No such route"))

        @self.exception_handler(Exception)  # type: ignore[untyped-decorator]
        def _unexpected(error: Exception) -> Response[str]:
            # Never a stack trace in a response; the log has it with the correlation id.
            logger.exception("unhandled error")
            return error_response(self.dialect, HangarError("Internal error"))

    def ok(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None, page: str | bool | None = False
    ) -> Response[str]:
        """A success response in this app's dialect. `page` (a cursor or None) marks a list: `nextCursor`
        goes beside `data` in the `/api` envelope and beside the list key in `/v1` objects."""
        payload = plain(data)
        body: Any = {"success": True, "data": payload} if self.dialect is Dialect.API else payload
        if page is not False:
            body["nextCursor"] = page
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=compact_json(body),
            headers=headers or {},
        )

    def responses(
        self,
        model: Any,
        status: int = 200,
        *,
        page: bool = False,
        conflict: bool = False,
        description: str = "Success",
        media_type: str = JSON,
    ) -> dict[int, Any]:
        """OpenAPI `responses` for a route: its success body (`model`, in this dialect; a list when `page`),
        and the error bodies. `conflict` documents 409; a non-JSON `media_type` documents a string body."""
        error_model = ApiErrorBody if self.dialect is Dialect.API else V1ErrorBody
        result: dict[int, Any] = {
            code: {"description": text, "content": {JSON: {"model": error_model}}}
            for code, text in ERROR_STATUSES.items()
            if code != CONFLICT or conflict
        }
        result[429]["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
        success = {"schema": {"type": "string"}} if media_type != JSON else {"model": self._body_model(model, page)}
        result[status] = {"description": description, "content": {media_type: success}}
        return result

    def _body_model(self, model: Any, page: bool) -> Any:
        if self.dialect is Dialect.V1:
            # A `/v1` list is an object with its list key and `nextCursor`, which the view declares.
            if page and "nextCursor" not in getattr(model, "model_fields", {}):
                raise TypeError(f"{model.__name__} is a page: it needs a nextCursor field")
            return model
        fields: dict[str, Any] = {"success": (Literal[True], ...), "data": (model, ...)}
        if page:
            fields["nextCursor"] = (str | None, ...)
        name = getattr(model, "__name__", None) or "Data"
        if getattr(model, "__origin__", None) is list:
            name = "ListOf" + model.__args__[0].__name__
        return create_model(f"ApiEnvelope{name}", **fields)

    def requires(self, *any_of: str) -> list[dict[str, list[str]]]:
        """Makes this app's route a user route that needs one of these scopes, and returns its OpenAPI
        `security` (docs generation puts the scopes on the user authorizer's schemes). The scope is
        checked before the request's input is read: a caller without it gets 403 whatever it sent."""
        self.required_scopes = frozenset(any_of)
        return [{USER_SCOPES_SCHEME: [scope]} for scope in any_of]

    def scope_refusal(self, event: dict[str, Any]) -> HangarError | None:
        """Why the caller of `event` may not use this app's user route (401/403), or None."""
        if not self.required_scopes:
            return None
        try:
            user_from_context((event.get("requestContext") or {}).get("authorizer")).require_any(self.required_scopes)
        except HangarError as error:
            return error
        return None

    def authorizer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
        return context

    def user(self) -> UserPrincipal:
        """The calling user, holding one of the scopes the route `requires` (403 otherwise)."""
        principal = user_from_context(self.authorizer_context())
        if self.required_scopes:
            principal.require_any(self.required_scopes)
        return principal

    def runner(self) -> RunnerPrincipal:
        return runner_from_context(self.authorizer_context())


def api_app() -> HangarResolver:
    return HangarResolver(Dialect.API)


def v1_app() -> HangarResolver:
    return HangarResolver(Dialect.V1)


def _header(event: dict[str, Any], name: str) -> str | None:
    headers = event.get("headers") or {}
    return next((str(value) for key, value in headers.items() if key.lower() == name), None)


def with_cors(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """`response` readable by the console's origin (CORS_ALLOWED_ORIGIN) when `event` came from it; a
    request from any other origin gets no CORS header, so the browser keeps the response from its page."""
    allowed = get_settings().cors_allowed_origin
    if not allowed:
        return response
    cors = CORSConfig(
        allow_origin=allowed,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
    ).to_dict(_header(event, "origin"))
    cors["Vary"] = "Origin"  # the answer depends on Origin: a cache must not hand it to another origin
    multi = response.get("multiValueHeaders")
    if isinstance(multi, dict):
        multi.update({name: [value] for name, value in cors.items()})
    else:
        response["headers"] = {**(response.get("headers") or {}), **cors}
    return response


def lambda_handler(
    app: HangarResolver, max_body_bytes: int = MAX_BODY_BYTES
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for an API handler module, with logging and metrics (Lambda traces it).

    `max_body_bytes` raises the 64 KiB envelope for a route whose own field limit is 64 KiB (a job
    result), so that limit is reported on the field itself."""
    get_settings()  # at cold start: an invalid setting fails the init phase, naming its variable

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # Refused before parsing: nothing of the request of a caller without the scope, or of an
        # oversized body, is read or stored.
        error = app.scope_refusal(event)
        if error is None and body_too_large(event, max_body_bytes):
            error = PayloadTooLarge(f"Request body exceeds {max_body_bytes // 1024} KiB", field="body")
        if error is None:
            error = media_type_refusal(event)
        if error is not None:
            response = error_response(app.dialect, error)
            return with_cors(
                event,
                {
                    "statusCode": response.status_code,
                    "headers": {**response.headers, "Content-Type": content_types.APPLICATION_JSON},
                    "body": response.body,
                    "isBase64Encoded": False,
                },
            )
        with audit.bind_request(event):  # every audit event of this request names its actor, IP and id
            return with_cors(event, app.resolve(event, context))

    entry: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = handler  # decorators erase the type
    return entry
