"""S3's request authentication in front of the embedded backend, as far as the API's URLs rely on it.

moto accepts any S3 request, signed or not. The API hands out presigned URLs (artifact uploads bound
to a size and content type, 15-minute downloads) and relies on S3 to refuse everything else, so the
local backend refuses what S3 would:

- a presigned request (`X-Amz-Signature` in the query) whose signature, recomputed with botocore's own
  SigV4 signer from the request as received (method, path, query, the signed headers' values), does
  not match: a PUT of another size or type than signed, a changed key, a tampered parameter
  (403 `SignatureDoesNotMatch`); or that is past `X-Amz-Date + X-Amz-Expires` (403 `AccessDenied`);
- a request with no credential at all (no `Authorization` header, no presigned query): the bucket is
  private (403 `AccessDenied`).

Header-signed requests (the SDK clients of the functions and tests, with the local credentials) pass
to moto as before. Times are real time, as botocore's signer and S3 use, not the local clock.
"""

from __future__ import annotations

import hmac
import time
from calendar import timegm
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

Refusal = tuple[str, str]  # (S3 error code, message)
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Paths of the backend that are not S3 and take no credential.
UNSIGNED_PATHS = ("/moto-api",)
MAX_EXPIRES_SECONDS = 7 * 86400  # SigV4's own limit on X-Amz-Expires


def _header(environ: Mapping[str, Any], name: str) -> str | None:
    key = name.upper().replace("-", "_")
    value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    return None if value is None else str(value)


def presigned_refusal(
    environ: Mapping[str, Any], secrets: Mapping[str, str], now: float | None = None
) -> Refusal | None:
    """Why S3 would refuse this presigned request (`secrets`: access key id -> secret key), or None."""
    raw_query = str(environ.get("QUERY_STRING", ""))
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    try:
        access_key, date, region, service, terminal = params["X-Amz-Credential"].split("/")
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        given = params["X-Amz-Signature"]
        signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "The presigned URL's X-Amz-* query parameters are malformed"
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or terminal != "aws4_request" or date != amz_date[:8]:
        return "AuthorizationQueryParametersError", "Only AWS4-HMAC-SHA256 presigned URLs are supported"
    if not 1 <= expires <= MAX_EXPIRES_SECONDS:
        return "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds"
    secret = secrets.get(access_key)
    if secret is None:
        return "InvalidAccessKeyId", "The AWS access key Id you provided does not exist in our records."
    moment = time.time() if now is None else now
    if moment > signed_at + expires:
        return "AccessDenied", "Request has expired"
    if moment < signed_at - 900:
        return "AccessDenied", "Request is not valid yet"

    # The request as the client signed it: the query without the signature (as sent, still encoded),
    # and only the headers it says it signed, with the values it sent now.
    unsigned_query = "&".join(part for part in raw_query.split("&") if not part.startswith("X-Amz-Signature="))
    host = _header(environ, "Host") or ""
    # The path as botocore encodes an S3 key (WSGI hands it over decoded, as latin-1).
    path = quote(str(environ.get("PATH_INFO") or "/").encode("latin-1"), safe="/~")
    url = f"http://{host}{path}?{unsigned_query}"
    headers = {}
    for name in signed_headers:
        value = host if name == "host" else _header(environ, name)
        if value is None:
            return "SignatureDoesNotMatch", f"The signed header {name} is missing from the request"
        headers[name] = value
    request = AWSRequest(method=str(environ.get("REQUEST_METHOD", "GET")), url=url, headers=headers)
    request.context["timestamp"] = amz_date
    signer = S3SigV4QueryAuth(Credentials(access_key, secret), service, region, expires=expires)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, given):
        return (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided."
            " Check your key and signing method.",
        )
    return None


def _error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def verify_s3_requests(app: WsgiApp, secrets: Mapping[str, str]) -> WsgiApp:
    """`app` (the moto backend) behind S3's checks of presigned and anonymous requests (module docstring)."""

    def checked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        query = str(environ.get("QUERY_STRING", ""))
        if "X-Amz-Signature=" in query:
            refusal = presigned_refusal(environ, secrets)
            if refusal is not None:
                return _error(start_response, *refusal)
        elif not _header(environ, "Authorization") and not path.startswith(UNSIGNED_PATHS):
            return _error(start_response, "AccessDenied", "Access Denied")
        return app(environ, start_response)

    return checked
