"""An issuer's signing keys (JWKS), cached per container, with the refetch rules a production service needs.

- The key set is kept for `lifespan` seconds (JWT_JWKS_CACHE_SECONDS), then fetched again.
- A token whose `kid` the set does not hold triggers one refetch, at most once a minute (so a key
  rotation works at once, and a flood of made-up kids costs the issuer one request a minute).
- A fetch that is slow (past `timeout`), fails or returns junk never replaces the last good set: its
  keys keep working through an issuer outage (up to MAX_STALE_SECONDS past their lifespan); and after
  a failure the issuer is not asked again for a minute, so an outage does not cost every request a wait.
- A key is needed that the cache cannot give because the issuer could not be asked → `JwksUnavailable`.

PyJWT does the parts that are cryptography or HTTP: `PyJWKClient.fetch_data` (http/https only, no
redirects, JSON object) and `PyJWKSet` (parsing keys, skipping unusable ones); its own cache is not
used because it keeps time with `time.monotonic` (tests and `local/` move `hangar.core.clock`), drops the
last good keys once they expire, and counts every fetch against its refetch cool-down.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jwt

from hangar.core import clock
from hangar.core.observability import logger

REFETCH_INTERVAL_SECONDS = 60.0
"""At most one refetch a minute for unknown kids, and no new try within a minute of a failed one."""
MAX_STALE_SECONDS = 24 * 3600.0
"""How long past their lifespan the last good keys serve while the issuer cannot be reached."""
_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class JwksUnavailable(Exception):
    """The key a token needs could not be had: the issuer's JWKS endpoint is slow, down or answers junk."""


class UnknownSigningKey(Exception):
    """The issuer was asked (recently) and does not publish the key this token names."""


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per container (loading the CA store costs ~70 ms; PyJWKClient would
    load it again on every fetch)."""
    return ssl.create_default_context()


def _fetch(url: str, timeout: float) -> Any:
    """The JWKS document, or JwksUnavailable. `timeout` bounds the whole fetch, not each socket read."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout, ssl_context=_tls_context())
            outcome["data"] = client.fetch_data()
        except Exception as error:  # connection, HTTP status, JSON: all "unavailable"
            outcome["error"] = error

    worker = threading.Thread(target=run, name="jwks-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise JwksUnavailable(f"JWKS endpoint did not answer within {timeout:g} s")
    if "error" in outcome:
        error = outcome["error"]
        raise JwksUnavailable(f"JWKS fetch failed: {type(error).__name__}: {error}")
    return outcome["data"]


def _signing_keys(document: Any) -> list[jwt.PyJWK]:
    """The set's asymmetric signature keys. A symmetric (`oct`) key in a JWKS is never a signing key here."""
    try:
        key_set = jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise JwksUnavailable(f"JWKS document unusable: {error}") from None
    keys = [
        key for key in key_set.keys if key.key_type in _ASYMMETRIC_KEY_TYPES and key.public_key_use in ("sig", None)
    ]
    if not keys:
        raise JwksUnavailable("JWKS document holds no asymmetric signing key")
    return keys


class JwksCache:
    """One issuer's keys in this container. Thread-safe (local/ serves requests on threads)."""

    def __init__(self, url: str, lifespan: float, timeout: float) -> None:
        self.url = url
        self.lifespan = float(lifespan)
        self.timeout = float(timeout)
        self._keys: list[jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self._unknown_kid_refetch_at = float("-inf")
        self._lock = threading.Lock()

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The key for a token's `kid` (a token without one: the set's only key), or why not."""
        with self._lock:
            now = clock.now()
            fetched_now = False
            if now - self._fetched_at >= self.lifespan and not self._backing_off(now):
                fetched_now = self._refresh(now)
            if self._keys is None or now - self._fetched_at >= self.lifespan + MAX_STALE_SECONDS:
                raise JwksUnavailable("no usable keys from the issuer")
            key = self._match(kid)
            if key is None and not fetched_now and kid is not None:
                if self._backing_off(now):
                    raise JwksUnavailable("issuer unreachable, and this key is not cached")
                if now - self._unknown_kid_refetch_at >= REFETCH_INTERVAL_SECONDS:
                    self._unknown_kid_refetch_at = now
                    if not self._refresh(now):
                        raise JwksUnavailable("issuer unreachable, and this key is not cached")
                    key = self._match(kid)
            if key is None:
                raise UnknownSigningKey("the issuer does not publish this key")
            return key

    def _backing_off(self, now: float) -> bool:
        return now - self._failed_at < REFETCH_INTERVAL_SECONDS

    def _refresh(self, now: float) -> bool:
        """Fetch the set; True when it replaced the cached one. A failure keeps the last good keys."""
        try:
            keys = _signing_keys(_fetch(self.url, self.timeout))
        except JwksUnavailable as error:
            self._failed_at = now
            logger.warning("JWKS fetch failed; cached keys serve", extra={"jwks_url": self.url, "error": str(error)})
            return False
        self._keys, self._fetched_at, self._failed_at = keys, now, float("-inf")
        return True

    def _match(self, kid: str | None) -> jwt.PyJWK | None:
        keys: Sequence[jwt.PyJWK] = self._keys or ()
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        return next((key for key in keys if key.key_id == kid), None)


_caches: dict[tuple[str, float, float], JwksCache] = {}
_caches_lock = threading.Lock()


def jwks_cache(url: str, lifespan: float, timeout: float) -> JwksCache:
    """The container's cache for this JWKS URL (settings do not change within a container)."""
    with _caches_lock:
        cache = _caches.get((url, lifespan, timeout))
        if cache is None:
            cache = _caches[(url, lifespan, timeout)] = JwksCache(url, lifespan, timeout)
        return cache


def reset() -> None:
    """Forget every cached key set (tests)."""
    with _caches_lock:
        _caches.clear()
