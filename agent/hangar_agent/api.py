"""HTTP transport (urllib) and the retry/back-off policy shared by the agent's loops."""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from hangar_agent import __version__, log

USER_AGENT = f"hangar-agent/{__version__}"
REQUEST_TIMEOUT = 30.0
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 600.0
BACKOFF_INITIAL = 1.0
BACKOFF_CAP = 60.0


class NetworkError(Exception):
    """The request did not produce an HTTP response (DNS, refused, reset, timeout...)."""


class TokenRejectedError(Exception):
    """The server answered 401: the runner token was regenerated or the runner deleted."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: Any  # parsed JSON, or None when the body was empty / not JSON
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def data(self) -> dict[str, Any]:
        """The ``data`` object of a ``{"success": true, "data": {...}}`` envelope ({} if absent)."""
        if isinstance(self.body, dict):
            inner = self.body.get("data")
            if isinstance(inner, dict):
                return inner
        return {}

    def error_code(self) -> str:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return str(err["code"])
        if isinstance(err, str):
            return err
        return f"http_{self.status}"

    def error_message(self) -> str:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(err, dict) and err.get("message") is not None:
            return str(err["message"])
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        text = self.text.strip()
        return text[:200] if text else (http.client.responses.get(self.status, "") or "request failed")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: they would drop the POST body and could carry the token elsewhere."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def encode_json(body: Any) -> bytes:
    """``body`` as UTF-8 JSON. Non-ASCII text stays as it is (a ``\\uXXXX`` escape would make a 64 KiB log
    chunk of non-Latin text up to twice as large); a lone surrogate, which UTF-8 cannot carry (a job's
    result may hold one from a ``\\ud800`` escape), falls back to ASCII escapes."""
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body).encode()


def request_json(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Response:
    """Send ``body`` (if any) as JSON; the response for any HTTP status, NetworkError when there is none."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = encode_json(body)
    if token is not None:
        headers["X-Runner-Token"] = token
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _opener.open(request, timeout=timeout) as resp:
            status = int(resp.status)
            resp_headers: Message = resp.headers
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        resp_headers = exc.headers
        try:
            raw = exc.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        raise NetworkError(str(exc.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise NetworkError(f"{type(exc).__name__}: {exc}") from None
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = None
    if text.strip():
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
    return Response(status=status, headers=resp_headers, body=parsed, text=text)


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    token: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Response:
    """POST ``body`` as JSON (see :func:`request_json`)."""
    return request_json("POST", url, body, token=token, timeout=timeout)


def get_json(url: str, *, token: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Response:
    """GET a JSON resource (see :func:`request_json`)."""
    return request_json("GET", url, token=token, timeout=timeout)


def parse_retry_after(value: str | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped to [1, 600]."""
    seconds = default
    if value:
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        seconds = default
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


def backoff_delay(attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Capped exponential back-off: 1 s doubling to 60 s, with ±20% jitter (attempt counts from 0)."""
    base = min(BACKOFF_CAP, BACKOFF_INITIAL * (2.0 ** min(attempt, 16)))
    return min(BACKOFF_CAP, base * rng(0.8, 1.2))


def jittered(seconds: float, rng: Callable[[float, float], float] = random.uniform) -> float:
    """``seconds`` ±10%."""
    return max(0.0, seconds * rng(0.9, 1.1))


class _Episode:
    """Back-off bookkeeping for one kind of request, so each episode logs once."""

    def __init__(self) -> None:
        self.rate_limited_until = 0.0
        self.rate_limited_since: float | None = None
        self.failing_since: float | None = None
        self.failures = 0


class ApiClient:
    """Runner-authenticated client that applies the agent's retry policy.

    * 429: wait ``Retry-After`` (default 5 s) and retry; one log line per back-off episode.
    * 5xx, invalid JSON on 2xx, network errors: capped exponential back-off with jitter;
      one log line per failure episode.
    * 401: raises :class:`TokenRejectedError`.
    * anything else (2xx, other 4xx): returned to the caller.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        transport: Callable[..., Response] = post_json,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._transport = transport
        self._timeout = timeout
        self._lock = threading.Lock()
        self._episodes: dict[str, _Episode] = {}

    def __repr__(self) -> str:
        return f"ApiClient(api_url={self.api_url!r})"

    def _episode(self, kind: str) -> _Episode:
        with self._lock:
            return self._episodes.setdefault(kind, _Episode())

    def call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        kind: str,
        abort: threading.Event,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> Response | None:
        """Send until a final answer arrives. Returns None when ``abort`` is set or ``deadline`` passes.
        ``timeout`` bounds each request (the client's own otherwise)."""
        url = self.api_url + path
        episode = self._episode(kind)
        attempt = 0
        while True:
            # Honour a rate limit that another thread of the same kind has already hit.
            with self._lock:
                wait = episode.rate_limited_until - time.monotonic()
            if wait > 0:
                if deadline is not None and time.monotonic() + wait > deadline:
                    return None
                if abort.wait(wait):
                    return None
            if abort.is_set():
                return None
            failure: str | None = None
            try:
                resp = self._transport(url, body, token=self._token, timeout=timeout or self._timeout)
            except NetworkError as exc:
                failure = f"network error: {exc}"
            else:
                if resp.status == 401:
                    raise TokenRejectedError()
                if resp.status == 429:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    self._rate_limited(kind, episode, retry_after)
                    continue
                if resp.status >= 500:
                    failure = f"HTTP {resp.status}"
                elif resp.ok and not isinstance(resp.body, dict):
                    failure = f"HTTP {resp.status} with a non-JSON body"
                else:
                    self._succeeded(kind, episode)
                    return resp
            delay = backoff_delay(attempt)
            attempt += 1
            self._failed(kind, episode, failure, delay)
            if deadline is not None and time.monotonic() + delay > deadline:
                return None
            if abort.wait(delay):
                return None

    def _rate_limited(self, kind: str, episode: _Episode, retry_after: float) -> None:
        with self._lock:
            now = time.monotonic()
            episode.rate_limited_until = max(episode.rate_limited_until, now + retry_after)
            first = episode.rate_limited_since is None
            if first:
                episode.rate_limited_since = now
        if first:
            log.warning("rate_limited", request=kind, retry_after=retry_after)

    def _failed(self, kind: str, episode: _Episode, failure: str | None, delay: float) -> None:
        with self._lock:
            first = episode.failing_since is None
            if first:
                episode.failing_since = time.monotonic()
            episode.failures += 1
        if first:
            log.warning("api_unavailable", request=kind, error=failure, retry_in=round(delay, 1))
        else:
            log.debug("api_unavailable", request=kind, error=failure, retry_in=round(delay, 1))

    def _succeeded(self, kind: str, episode: _Episode) -> None:
        with self._lock:
            now = time.monotonic()
            rate_since, episode.rate_limited_since = episode.rate_limited_since, None
            fail_since, episode.failing_since = episode.failing_since, None
            failures, episode.failures = episode.failures, 0
        if rate_since is not None:
            log.info("rate_limit_ended", request=kind, after=f"{now - rate_since:.1f}s")
        if fail_since is not None:
            log.info("api_recovered", request=kind, after=f"{now - fail_since:.1f}s", failures=failures)
