"""JWT negatives (DESIGN §2): each is a 401, whatever the token claims about itself."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hangar.auth import principal_from_claims, verify_jwt
from hangar.config import Settings
from hangar.errors import Unauthorized

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
HS = Settings(jwt_algorithms=["HS256"], jwt_secret=SECRET, jwt_issuer="hangar-test", jwt_audience="hangar")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "user-1",
        "org": "acme",
        "iss": "hangar-test",
        "aud": "hangar",
        "exp": int(time.time()) + 300,
        "scope": "runners:read runners:manage",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_hs256_token_yields_principal() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    principal = principal_from_claims(verify_jwt(token, HS))
    assert principal.org_id == "acme"
    assert principal.scopes == {"runners:read", "runners:manage"}


def test_scp_list_and_org_defaulting_to_sub() -> None:
    token = jwt.encode(claims(org=None, scope=None, scp=["jobs:read", "bogus"]), SECRET, algorithm="HS256")
    principal = principal_from_claims(verify_jwt(token, HS))
    assert principal.org_id == "user-1"
    assert principal.scopes == {"jobs:read"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_alg_none_is_refused() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."
    with pytest.raises(Unauthorized):
        verify_jwt(token, HS)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            jwt.encode(claims(), "some-other-secret-of-sufficient-length!!", algorithm="HS256"), id="wrong-hs-secret"
        ),
        pytest.param(jwt.encode(claims(), RSA_KEY, algorithm="RS256"), id="rs256-against-hs-config"),
        pytest.param(jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"), id="wrong-aud"),
        pytest.param(jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), id="wrong-iss"),
        pytest.param(jwt.encode(claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"), id="expired"),
        pytest.param(jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), id="missing-exp"),
        pytest.param(jwt.encode(claims(aud=None), SECRET, algorithm="HS256"), id="missing-aud"),
        pytest.param(jwt.encode(claims(iss=None), SECRET, algorithm="HS256"), id="missing-iss"),
        pytest.param(jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256"), id="nbf-future"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="hs512-not-configured"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_hs_config_refuses(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify_jwt(token, HS)


def test_hs256_signed_with_public_key_against_rs_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classic algorithm-confusion attack: HMAC keyed with the RSA public key."""
    rs_settings = Settings(
        jwt_algorithms=["RS256"],
        jwt_jwks_url="https://issuer.example/jwks.json",
        jwt_issuer="hangar-test",
        jwt_audience="hangar",
    )

    class FakeJwks:
        def get_signing_key_from_jwt(self, _token: str) -> Any:
            return jwt.PyJWK.from_dict(
                {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "k1", "alg": "RS256"}
            )

    monkeypatch.setattr("hangar.auth._jwks_client", lambda _url: FakeJwks())
    good = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "k1"})
    assert verify_jwt(good, rs_settings)["sub"] == "user-1"
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims())}"
    signature = hmac.new(RSA_PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    forged_token = f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    with pytest.raises(Unauthorized):
        verify_jwt(forged_token, rs_settings)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verify_jwt(jwt.encode(claims(), other_key, algorithm="RS256", headers={"kid": "k1"}), rs_settings)


def test_org_claim_with_a_trailing_newline_is_refused() -> None:
    token = jwt.encode(claims(org="acme\n"), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        principal_from_claims(verify_jwt(token, HS))
