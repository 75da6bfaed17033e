"""The JWKS rules (README "Authentication"), each against a real HTTP endpoint on 127.0.0.1.

Time is `hangar.core.clock` (frozen, then moved by the tests): no test sleeps for the one-minute rule.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hangar.core import clock
from hangar.core.config import Settings
from hangar.core.errors import Unauthorized
from hangar.identity import jwks
from hangar.identity.auth import principal_from_claims, verify_jwt

T0 = 1_900_000_000.0
ISSUER = "https://issuer.test/"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def token(self, **overrides: Any) -> str:
        return jwt.encode(claims(**overrides), self.private, algorithm=self.alg, headers={"kid": self.kid})


# RSA key generation is slow: a few keys, each handed out under fresh kids (a kid is only a name).
_RSA_KEYS = [rsa.generate_private_key(65537, 2048) for _ in range(3)]
_EC_KEY = ec.generate_private_key(ec.SECP256R1())
_handed_out = 0


def rsa_key() -> SigningKey:
    """A new kid on one of the RSA keys (successive calls use different keys)."""
    global _handed_out
    _handed_out += 1
    return SigningKey(f"rsa-{uuid.uuid4().hex[:8]}", "RS256", _RSA_KEYS[_handed_out % len(_RSA_KEYS)])


def ec_key() -> SigningKey:
    return SigningKey(f"ec-{uuid.uuid4().hex[:8]}", "ES256", _EC_KEY)


def claims(**overrides: Any) -> dict[str, Any]:
    now = clock.now()
    base = {"sub": "user-1", "org": "acme", "iss": ISSUER, "aud": "hangar", "iat": int(now), "exp": int(now) + 300}
    base["scope"] = "runners:read"
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class JwksEndpoint:
    """What the issuer's JWKS URL answers: `document` as JSON (or `raw`, `status`), after `gate` opens."""

    keys: list[SigningKey] = field(default_factory=list)
    raw: bytes | None = None
    status: int = 200
    gate: threading.Event = field(default_factory=threading.Event)
    hits: int = 0
    url: str = ""

    def answer(self) -> tuple[int, bytes]:
        self.hits += 1
        if self.raw is not None:
            return self.status, self.raw
        return self.status, json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()


@pytest.fixture
def endpoint() -> Iterator[JwksEndpoint]:
    state = JwksEndpoint()
    state.gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.gate.wait(10)
            status, body = state.answer()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up waiting
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    yield state
    state.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """hangar.core.clock reads a fixed time (tests move it with clock.advance); every test has fresh caches."""
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=lambda: T0))
    jwks.reset()
    yield
    jwks.reset()


def settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_algorithms": ["RS256", "ES256"],
        "jwt_jwks_url": url,
        "jwt_issuer": ISSUER,
        "jwt_audience": "hangar",
    }
    values.update(overrides)
    return Settings(**values)


def refused(token: str, config: Settings) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verify_jwt(token, config)
    return caught.value


def test_rs256_and_es256_tokens_verify_against_the_jwks(endpoint: JwksEndpoint) -> None:
    rs, es = rsa_key(), ec_key()
    endpoint.keys = [rs, es]
    config = settings(endpoint.url)
    for key in (rs, es):
        principal = principal_from_claims(verify_jwt(key.token(), config), config)
        assert (principal.org_id, principal.subject, principal.scopes) == ("acme", "user-1", {"runners:read"})
    assert endpoint.hits == 1  # one fetch serves both


def test_keys_are_cached_for_their_lifespan_then_refetched(endpoint: JwksEndpoint) -> None:
    key, config = warm(endpoint, jwt_jwks_cache_seconds=300)
    for _ in range(4):
        verify_jwt(key.token(), config)
    assert endpoint.hits == 1
    clock.advance(299)
    verify_jwt(key.token(), config)
    assert endpoint.hits == 1
    clock.advance(2)
    verify_jwt(key.token(), config)
    assert endpoint.hits == 2


def test_rotation_a_new_kid_works_at_once_and_a_removed_key_stops_working(endpoint: JwksEndpoint) -> None:
    old, new = rsa_key(), rsa_key()
    endpoint.keys = [old]
    config = settings(endpoint.url)
    old_token = old.token()
    verify_jwt(old_token, config)
    clock.advance(5)  # well inside the key set's lifespan
    endpoint.keys = [new]  # the issuer rotated: new key in, old key out
    assert verify_jwt(new.token(), config)["sub"] == "user-1"  # first try, one refetch
    assert endpoint.hits == 2
    error = refused(old_token, config)
    assert error.code == "unauthorized" and "does not publish" in error.message


def test_unknown_kids_trigger_at_most_one_refetch_a_minute(endpoint: JwksEndpoint) -> None:
    key, config = warm(endpoint)  # the initial fetch
    for _ in range(50):
        assert refused(rsa_key().token(), config).code == "unauthorized"
    assert endpoint.hits == 2  # one refetch for 50 made-up kids
    clock.advance(59)
    refused(rsa_key().token(), config)
    assert endpoint.hits == 2
    clock.advance(1)
    refused(rsa_key().token(), config)
    assert endpoint.hits == 3
    assert verify_jwt(key.token(), config)  # the real key never stopped working


def test_the_first_fetch_of_a_rotated_set_is_not_followed_by_a_second(endpoint: JwksEndpoint) -> None:
    """A cold container fetching because of an unknown kid asks once, not twice."""
    endpoint.keys = [rsa_key()]
    refused(rsa_key().token(), settings(endpoint.url))
    assert endpoint.hits == 1


def warm(endpoint: JwksEndpoint, **overrides: Any) -> tuple[SigningKey, Settings]:
    """The endpoint publishes one key, and a token signed with it has been verified (the set is cached)."""
    key = rsa_key()
    endpoint.keys = [key]
    config = settings(endpoint.url, **overrides)
    assert verify_jwt(key.token(), config)
    return key, config


def _stop(endpoint: JwksEndpoint) -> None:
    """The issuer goes down: every request answers 503."""
    endpoint.raw, endpoint.status = b'{"error": "down"}', 503


def test_issuer_down_cached_keys_keep_working_and_an_unknown_kid_is_jwks_unavailable(endpoint: JwksEndpoint) -> None:
    key, config = warm(endpoint, jwt_jwks_cache_seconds=300)
    _stop(endpoint)
    assert verify_jwt(key.token(), config)
    assert refused(rsa_key().token(), config).code == "jwks_unavailable"
    # Past the set's lifespan the refresh fails too, and the last good keys still serve.
    clock.advance(3600)
    assert verify_jwt(key.token(), config)
    clock.advance(80000)
    assert verify_jwt(key.token(), config)


def test_after_a_failed_fetch_the_issuer_is_not_asked_again_for_a_minute(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    _stop(endpoint)
    config = settings(endpoint.url)
    for _ in range(20):
        assert refused(key.token(), config).code == "jwks_unavailable"
    assert endpoint.hits == 1
    endpoint.raw, endpoint.status = None, 200  # the issuer is back
    clock.advance(59)
    assert refused(key.token(), config).code == "jwks_unavailable"
    assert endpoint.hits == 1
    clock.advance(1)
    assert verify_jwt(key.token(), config)
    assert endpoint.hits == 2


def test_the_last_good_keys_serve_a_bounded_time(endpoint: JwksEndpoint) -> None:
    key, config = warm(endpoint, jwt_jwks_cache_seconds=300)
    _stop(endpoint)
    clock.advance(300 + jwks.MAX_STALE_SECONDS - 1)
    assert verify_jwt(key.token(), config)
    clock.advance(61)
    assert refused(key.token(), config).code == "jwks_unavailable"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b"<html>Service Unavailable</html>", 200, id="html"),
        pytest.param(b"[1, 2, 3]", 200, id="json-array"),
        pytest.param(b'{"issuer": "x"}', 200, id="no-keys"),
        pytest.param(b'{"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB"}]}', 200, id="unusable-key"),
        pytest.param(b'{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}', 200, id="only-symmetric"),
        pytest.param(b'{"keys": "nope"}', 200, id="keys-not-a-list"),
        pytest.param(b'{"keys": []}', 500, id="http-500"),
        pytest.param(b"", 404, id="http-404"),
    ],
)
def test_junk_is_jwks_unavailable_and_never_replaces_good_keys(endpoint: JwksEndpoint, raw: bytes, status: int) -> None:
    key = rsa_key()
    endpoint.raw, endpoint.status = raw, status
    config = settings(endpoint.url, jwt_jwks_cache_seconds=300)
    assert refused(key.token(), config).code == "jwks_unavailable"  # cold: nothing to fall back on
    endpoint.raw, endpoint.status, endpoint.keys = None, 200, [key]
    clock.advance(60)
    verify_jwt(key.token(), config)
    endpoint.raw, endpoint.status = raw, status
    clock.advance(301)  # the refresh gets junk...
    assert verify_jwt(key.token(), config)  # ...and the good keys stay


def test_a_slow_jwks_endpoint_is_jwks_unavailable_within_the_timeout(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    endpoint.gate.clear()  # the endpoint does not answer until released
    config = settings(endpoint.url, jwt_jwks_timeout_seconds=0.2)
    assert refused(key.token(), config).code == "jwks_unavailable"
    endpoint.gate.set()


def test_a_slow_refresh_keeps_the_cached_keys(endpoint: JwksEndpoint) -> None:
    key, config = warm(endpoint, jwt_jwks_cache_seconds=300)
    # From now on the fetch may take 0.2 s (the warm-up above had the default, on a busy machine).
    jwks.jwks_cache(config.jwt_jwks_url, 300, config.jwt_jwks_timeout_seconds).timeout = 0.2
    endpoint.gate.clear()
    clock.advance(301)
    assert verify_jwt(key.token(), config)
    endpoint.gate.set()


def test_an_unreachable_jwks_url_is_jwks_unavailable() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert refused(rsa_key().token(), settings(f"http://127.0.0.1:{port}/jwks")).code == "jwks_unavailable"


def test_a_token_without_kid_uses_the_only_key_and_is_refused_among_several(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    token = jwt.encode(claims(), key.private, algorithm="RS256")
    assert verify_jwt(token, settings(endpoint.url))
    endpoint.keys = [key, rsa_key()]
    jwks.reset()
    refused(token, settings(endpoint.url))


# -- the algorithm comes from configuration, never from the token -----------------------------------


def _b64(data: dict[str, Any] | bytes) -> str:
    import base64

    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forge(token: str, header: dict[str, Any], sign: Callable[[bytes], bytes] | None = None) -> str:
    payload = token.split(".")[1]
    signing_input = f"{_b64(header)}.{payload}"
    signature = _b64(sign(signing_input.encode())) if sign else token.split(".")[2]
    return f"{signing_input}.{signature}"


def test_an_es256_token_is_refused_when_only_rs256_is_configured(endpoint: JwksEndpoint) -> None:
    rs, es = rsa_key(), ec_key()
    endpoint.keys = [rs, es]
    config = settings(endpoint.url, jwt_algorithms=["RS256"])
    assert verify_jwt(rs.token(), config)
    refused(es.token(), config)


def test_hs256_signed_with_the_published_public_key_is_refused_even_if_hs256_is_configured(
    endpoint: JwksEndpoint,
) -> None:
    """Algorithm confusion: HMAC keyed with the RSA public key the JWKS publishes."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    key = rsa_key()
    endpoint.keys = [key]
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for configured in (["RS256"], ["RS256", "HS256"]):
        forged = _forge(
            key.token(),
            {"alg": "HS256", "typ": "JWT", "kid": key.kid},
            lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
        )
        refused(forged, settings(endpoint.url, jwt_algorithms=configured))
    assert endpoint.hits <= 1  # refused on its header alone


@pytest.mark.parametrize("alg", ["none", "RS512", "ES256", "PS256", "HS256", ""])
def test_a_token_whose_header_alg_was_changed_is_refused(endpoint: JwksEndpoint, alg: str) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    config = settings(endpoint.url, jwt_algorithms=["RS256", "RS512", "ES256", "PS256"])
    token = key.token()
    assert verify_jwt(token, config)
    refused(_forge(token, {"alg": alg, "typ": "JWT", "kid": key.kid}), config)


def test_an_rsa_key_without_alg_in_the_jwks_verifies_rs256_only(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    jwk = {k: v for k, v in key.jwk().items() if k != "alg"}
    endpoint.raw = json.dumps({"keys": [jwk]}).encode()
    config = settings(endpoint.url, jwt_algorithms=["RS256", "RS512"])
    assert verify_jwt(key.token(), config)
    rs512 = jwt.encode(claims(), key.private, algorithm="RS512", headers={"kid": key.kid})
    refused(rs512, config)


def test_another_issuers_token_is_refused_before_any_key_lookup(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    refused(key.token(iss="https://evil.test/"), settings(endpoint.url))
    assert endpoint.hits == 0


def test_no_jwks_algorithm_configured_refuses_every_token(endpoint: JwksEndpoint) -> None:
    key = rsa_key()
    endpoint.keys = [key]
    refused(key.token(), settings(endpoint.url, jwt_algorithms=["HS256"]))
    assert endpoint.hits == 0
