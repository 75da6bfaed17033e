"""Sign-in with a real OpenID Connect issuer nobody here wrote: `oidc-provider` (npm, tests/oidc/).

`make run`'s server (`local.testing.start_local_api`) is pointed at the issuer with the four variables
a user sets (HANGAR_JWT_JWKS_URL, HANGAR_JWT_ISSUER, HANGAR_JWT_AUDIENCE, HANGAR_JWT_ALGORITHMS);
tokens come from the issuer's token endpoint (client credentials, RFC 8707 resource indicators,
RS256 and ES256 JWT access tokens for the `hangar` audience), and go to Hangar over real HTTP.

The tests run in file order against one issuer and one server: the issuer's signing keys rotate in
the third, and the last stops the issuer. Each test gets the tokens it needs itself. `make oidc-e2e`
runs this module (its own `make test` stage) and prints what it cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import select
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.testing import HttpResult, LocalApi, http_call, start_local_api

pytestmark = [pytest.mark.slow]

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
ORG = f"oidc-{uuid.uuid4().hex[:12]}"
SCOPES = "runners:read runners:manage"
RS256, ES256, OTHER_AUDIENCE = "urn:hangar:rs256", "urn:hangar:es256", "urn:other"


@dataclass
class Issuer:
    """The `node tests/oidc/issuer.mjs` process and what it printed (issuer URLs, client, kids)."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]
    tokens: int = 0
    stopped: bool = False

    @property
    def url(self) -> str:
        return str(self.info["issuer"])

    def token(self, resource: str = RS256, scope: str = SCOPES, issuer: str | None = None) -> str:
        """An access token from the token endpoint (client credentials) for that resource indicator."""
        credentials = base64.b64encode(f"{self.info['clientId']}:{self.info['clientSecret']}".encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource, "scope": scope})
        result = http_call(
            "POST",
            f"{issuer or self.url}/token",
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded"},
            body=form,
        )
        assert result.status == 200, result
        self.tokens += 1
        return str(result.body["access_token"])

    def rotate(self) -> list[str]:
        result = http_call("POST", f"{self.url}/_test/rotate")
        assert result.status == 200, result
        return list(result.body["kids"])

    def jwks_requests(self) -> int:
        return int(http_call("GET", f"{self.url}/_test/stats").body["jwksRequests"])

    def public_jwks(self) -> dict[str, Any]:
        return dict(http_call("GET", str(self.info["jwksUrl"])).body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.stopped = True


def _start_issuer() -> Issuer:
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run `make oidc-e2e` (it installs node's packages first)")
    process = subprocess.Popen(
        [node, str(OIDC_DIR / "issuer.mjs")],
        cwd=OIDC_DIR,
        env={**os.environ, "HANGAR_TEST_ORG": ORG},
        stdin=subprocess.PIPE,  # the issuer exits when this closes, whatever happens to the test run
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        pytest.fail(f"the oidc-provider issuer did not start (exit code {process.poll()})")
    return Issuer(process, json.loads(line))


@dataclass
class Cost:
    started: float = field(default_factory=time.monotonic)
    hangar_requests: int = 0


@pytest.fixture(scope="module")
def cost() -> Cost:
    return Cost()


@pytest.fixture(scope="module")
def issuer(cost: Cost) -> Iterator[Issuer]:
    started = _start_issuer()
    try:
        yield started
    finally:
        started.stop()
        print(
            f"\noidc e2e: {time.monotonic() - cost.started:.1f} s, one oidc-provider issuer and one `make run` server, "
            f"{started.tokens} tokens issued, {cost.hangar_requests} requests to Hangar"
        )


@pytest.fixture(scope="module")
def api(issuer: Issuer) -> Iterator[LocalApi]:
    server = start_local_api(
        extra_env={
            "HANGAR_JWT_JWKS_URL": str(issuer.info["jwksUrl"]),
            "HANGAR_JWT_ISSUER": issuer.url,
            "HANGAR_JWT_AUDIENCE": "hangar",
            "HANGAR_JWT_ALGORITHMS": "RS256,ES256",
        }
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def call(api: LocalApi, cost: Cost) -> Any:
    def calling(method: str, path: str, token: str, **kwargs: Any) -> HttpResult:
        cost.hangar_requests += 1
        return api.call(method, path, token=token, **kwargs)

    return calling


def _refused(result: HttpResult, code: str = "unauthorized") -> None:
    assert result.status == 401, result
    assert result.body["success"] is False and result.body["error"]["code"] == code, result.body


def _header(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _with_header(token: str, header: dict[str, Any], key: bytes | None = None) -> str:
    """The token's payload under another header: the original signature, or an HMAC with `key`."""
    _, payload, signature = token.split(".")
    signing_input = f"{_b64(json.dumps(header).encode())}.{payload}"
    if key is not None:
        signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{signature}"


def test_tokens_from_the_issuer_create_and_list_runners(issuer: Issuer, call: Any) -> None:
    rs_token, es_token = issuer.token(RS256), issuer.token(ES256)
    assert (_header(rs_token)["alg"], _header(es_token)["alg"]) == ("RS256", "ES256")
    created = call("POST", "/api/runners", rs_token, json={"name": "oidc-runner", "labels": ["linux"]})
    assert created.status == 201, created
    listed = call("GET", "/api/runners", rs_token)
    assert listed.status == 200 and [r["_id"] for r in listed.body["data"]] == [created.body["data"]["_id"]]
    v1 = call("GET", "/v1/runners", es_token)
    assert v1.status == 200 and [r["id"] for r in v1.body["runners"]] == [created.body["data"]["_id"]]
    # The tenant is the issuer's `org` claim; one JWKS fetch served both algorithms.
    assert jwt.decode(rs_token, options={"verify_signature": False})["org"] == ORG
    assert issuer.jwks_requests() == 1


def test_another_audience_another_issuer_and_an_altered_alg_are_refused(issuer: Issuer, call: Any) -> None:
    good = issuer.token(RS256)
    kid = _header(good)["kid"]
    published = next(key for key in issuer.public_jwks()["keys"] if key["kid"] == kid)
    fetches = issuer.jwks_requests()
    assert call("GET", "/api/runners", good).status == 200
    _refused(call("GET", "/api/runners", issuer.token(OTHER_AUDIENCE)))
    # Same signing keys, other `iss`: only the issuer check tells it apart.
    foreign = issuer.token(RS256, issuer=str(issuer.info["otherIssuer"]))
    assert _header(foreign)["kid"] == _header(good)["kid"]
    _refused(call("GET", "/api/runners", foreign))
    # The header's alg changed: HS256 keyed with the published RSA key (algorithm confusion), none, RS512.
    pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(published)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _with_header(good, {"alg": "HS256", "typ": "JWT", "kid": kid}, key=pem)
    _refused(call("GET", "/api/runners", forged))
    for alg in ("none", "RS512", "ES256"):
        _refused(call("GET", "/api/runners", _with_header(good, {"alg": alg, "typ": "at+jwt", "kid": kid})))
    assert issuer.jwks_requests() == fetches  # none of them made Hangar ask the issuer again


def test_after_a_key_rotation_the_new_key_works_at_once_and_the_removed_one_is_refused(
    issuer: Issuer, call: Any
) -> None:
    before_rs, before_es = issuer.token(RS256), issuer.token(ES256)
    assert call("GET", "/api/runners", before_rs).status == 200
    fetches = issuer.jwks_requests()
    new_kids = issuer.rotate()
    after_rs, after_es = issuer.token(RS256), issuer.token(ES256)
    assert {_header(after_rs)["kid"], _header(after_es)["kid"]} == set(new_kids)
    assert call("GET", "/api/runners", after_rs).status == 200  # first try: the unknown kid refetched
    assert call("GET", "/v1/runners", after_es).status == 200
    assert issuer.jwks_requests() == fetches + 1
    _refused(call("GET", "/api/runners", before_rs))
    _refused(call("GET", "/api/runners", before_es))


def test_with_the_issuer_stopped_cached_keys_work_and_an_unknown_kid_is_jwks_unavailable(
    issuer: Issuer, api: LocalApi, call: Any
) -> None:
    token = issuer.token(RS256)
    assert call("GET", "/api/runners", token).status == 200  # its key is cached
    issuer.stop()
    # A minute on, so the unknown-kid refetch the rotation test spent is available again: the issuer
    # is really asked, and found unreachable.
    api.advance_clock(61)
    assert call("GET", "/api/runners", token).status == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(token, options={"verify_signature": False})
    unknown_kid = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": f"unknown-{uuid.uuid4().hex[:8]}"})
    _refused(call("GET", "/api/runners", unknown_kid), "jwks_unavailable")
    # Past the key set's lifespan (JwtJwksCacheSeconds, 300 s) the refresh fails too: the last good keys serve.
    api.advance_clock(301)
    assert call("GET", "/api/runners", token).status == 200
