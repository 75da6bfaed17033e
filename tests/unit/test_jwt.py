"""JWT negatives (DESIGN §2): each is a 401, whatever the token claims about itself."""

import base64
import json
import time
import warnings
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hangar.core import clock
from hangar.core.config import Settings
from hangar.core.errors import Unauthorized
from hangar.identity.auth import UserPrincipal, principal_from_claims, verify_jwt
from jwt.warnings import InsecureKeyLengthWarning

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
HS = Settings(jwt_algorithms=["HS256"], jwt_secret=SECRET, jwt_issuer="hangar-test", jwt_audience="hangar")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "user-1",
        "org": "acme",
        "iss": "hangar-test",
        "aud": "hangar",
        "exp": int(clock.now()) + 300,
        "scope": "runners:read runners:manage",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs512_with_the_configured_secret() -> str:
    # PyJWT warns the secret is short for SHA-512 (on every test run): this token is refused for its
    # algorithm, whatever its key.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims(), SECRET, algorithm="HS512")


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
        pytest.param(hs512_with_the_configured_secret(), id="hs512-not-configured"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_hs_config_refuses(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify_jwt(token, HS)


def test_org_claim_with_a_trailing_newline_is_refused() -> None:
    token = jwt.encode(claims(org="acme\n"), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        principal_from_claims(verify_jwt(token, HS))


# -- clock-skew leeway (JWT_LEEWAY_SECONDS, default 60) on exp / nbf / iat, on hangar.core.clock ----------


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """hangar.core.clock reads a fixed time, so a boundary is exact (moved with clock.advance)."""
    now = 1_900_000_000.0
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=lambda: now))
    return now


def _hs(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


def test_default_leeway_is_60_seconds_on_exp(frozen_clock: float) -> None:
    assert verify_jwt(_hs(exp=int(frozen_clock) - 59), HS)
    with pytest.raises(Unauthorized) as caught:
        verify_jwt(_hs(exp=int(frozen_clock) - 60), HS)
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_default_leeway_is_60_seconds_on_nbf_and_iat(frozen_clock: float, claim: str) -> None:
    assert verify_jwt(_hs(**{claim: int(frozen_clock) + 60}), HS)
    with pytest.raises(Unauthorized):
        verify_jwt(_hs(**{claim: int(frozen_clock) + 61}), HS)


def test_leeway_is_configurable(frozen_clock: float) -> None:
    strict = HS.model_copy(update={"jwt_leeway_seconds": 0})
    with pytest.raises(Unauthorized):
        verify_jwt(_hs(exp=int(frozen_clock)), strict)
    with pytest.raises(Unauthorized):
        verify_jwt(_hs(nbf=int(frozen_clock) + 1), strict)
    assert verify_jwt(_hs(exp=int(frozen_clock) + 1, nbf=int(frozen_clock)), strict)


def test_expiry_follows_hangar_clock(frozen_clock: float) -> None:
    token = _hs(exp=int(frozen_clock) + 300)
    assert verify_jwt(token, HS)
    clock.advance(300 + 59)
    assert verify_jwt(token, HS)
    clock.advance(1)
    with pytest.raises(Unauthorized):
        verify_jwt(token, HS)


@pytest.mark.parametrize("value", ["1900000000", True, None, [1]])
def test_times_must_be_numbers(frozen_clock: float, value: Any) -> None:
    token = jwt.encode({**claims(), "exp": int(frozen_clock) + 300, "nbf": value}, SECRET, algorithm="HS256")
    if value is None:
        assert verify_jwt(token, HS)
        return
    with pytest.raises(Unauthorized):
        verify_jwt(token, HS)


# -- claims mapping: tenant, scopes, audience ---------------------------------------------------------


def mapped(token_claims: dict[str, Any], **settings: Any) -> UserPrincipal:
    config = HS.model_copy(update=settings)
    return principal_from_claims(verify_jwt(jwt.encode(token_claims, SECRET, algorithm="HS256"), config), config)


def test_a_namespaced_org_claim_auth0_style() -> None:
    org_claim = "https://hangar.example.com/org"
    principal = mapped(claims(org=None, **{org_claim: "acme"}), jwt_org_claim=org_claim)
    assert principal.org_id == "acme"
    # The default claim name is no longer read once another is configured.
    assert mapped(claims(org="other"), jwt_org_claim=org_claim).org_id == "user-1"


def test_cognito_custom_org_attribute() -> None:
    assert mapped(claims(org=None, **{"custom:org": "acme"}), jwt_org_claim="custom:org").org_id == "acme"


def test_an_org_claim_holding_one_org_keycloak_organization_style() -> None:
    assert mapped(claims(org=None, organization=["acme"]), jwt_org_claim="organization").org_id == "acme"


@pytest.mark.parametrize("value", [["acme", "globex"], {"acme": {}}, 42, "bad org", "x" * 129])
def test_an_org_claim_that_names_no_single_valid_org_is_refused(value: Any) -> None:
    with pytest.raises(Unauthorized):
        mapped(claims(org=value))


def test_auth0_permissions_list_as_the_scope_claim() -> None:
    token_claims = claims(scope="openid profile", permissions=["runners:read", "jobs:manage", "bogus"])
    assert mapped(token_claims, jwt_scope_claim=["permissions"]).scopes == {"runners:read", "jobs:manage"}
    # Several claims: every named one counts.
    both = mapped({**token_claims, "scope": "targets:read"}, jwt_scope_claim=["permissions", "scope"])
    assert both.scopes == {"runners:read", "jobs:manage", "targets:read"}


def test_default_scope_claims_are_scope_and_scp() -> None:
    assert mapped(claims(scope="runners:read")).scopes == {"runners:read"}
    assert mapped(claims(scope=None, scp="jobs:read targets:read")).scopes == {"jobs:read", "targets:read"}
    assert mapped(claims(scope=None, scp=["jobs:read", 7])).scopes == {"jobs:read"}
    assert mapped(claims(scope=None, permissions=["jobs:read"])).scopes == frozenset()


def test_cognito_resource_server_scopes_with_a_prefix() -> None:
    token_claims = claims(scope="hangar/runners:read hangar/jobs:manage runners:manage aws.cognito.signin.user.admin")
    principal = mapped(token_claims, jwt_scope_prefix="hangar/")
    assert principal.scopes == {"runners:read", "jobs:manage"}  # the unprefixed runners:manage does not count


def test_cognito_access_tokens_carry_the_audience_in_client_id() -> None:
    cognito = {"jwt_audience_claim": "client_id", "jwt_audience": "app-client-1, app-client-2"}
    token_claims = claims(aud=None, client_id="app-client-2", token_use="access")
    assert mapped(token_claims, **cognito).org_id == "acme"
    for wrong in ({"client_id": "app-client-3"}, {"client_id": None}, {"client_id": ["app-client-3"]}):
        with pytest.raises(Unauthorized):
            mapped(claims(aud=None, **wrong), **cognito)
    # An ID token (aud = the app client, no client_id) is not an access token for Hangar.
    with pytest.raises(Unauthorized):
        mapped(claims(aud="app-client-1"), **cognito)


def test_several_configured_audiences() -> None:
    assert mapped(claims(aud=["other", "hangar-2"]), jwt_audience="hangar, hangar-2").org_id == "acme"
    with pytest.raises(Unauthorized):
        mapped(claims(aud="other"), jwt_audience="hangar, hangar-2")


def test_claims_mapping_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "JWT_ORG_CLAIM": "https://hangar.example.com/org",
            "JWT_SCOPE_CLAIM": "permissions, scope",
            "JWT_SCOPE_PREFIX": "hangar/",
            "JWT_AUDIENCE_CLAIM": "client_id",
            "JWT_LEEWAY_SECONDS": "30",
            "JWT_JWKS_CACHE_SECONDS": "600",
        }
    )
    assert settings.jwt_org_claim == "https://hangar.example.com/org"
    assert settings.jwt_scope_claim == ["permissions", "scope"]
    assert (settings.jwt_scope_prefix, settings.jwt_audience_claim) == ("hangar/", "client_id")
    assert (settings.jwt_leeway_seconds, settings.jwt_jwks_cache_seconds) == (30, 600)
    defaults = Settings.from_env({})
    assert (defaults.jwt_org_claim, defaults.jwt_scope_claim) == ("org", ["scope", "scp"])
    assert (defaults.jwt_leeway_seconds, defaults.jwt_jwks_cache_seconds) == (60, 300)


@pytest.mark.parametrize(
    ("name", "value"), [("JWT_LEEWAY_SECONDS", "-1"), ("JWT_LEEWAY_SECONDS", "3601"), ("JWT_JWKS_CACHE_SECONDS", "0")]
)
def test_out_of_range_jwt_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name.lower()):
        Settings.from_env({name: value})


def test_every_jwt_setting_is_a_template_parameter_with_the_same_default() -> None:
    """template.yaml parameters → the functions' environment → Settings, defaults agreeing."""
    from support import template

    loaded = template()
    variables = loaded["Globals"]["Function"]["Environment"]["Variables"]
    defaults = Settings()
    for name in Settings.model_fields:
        if not name.startswith("jwt_") or name == "jwt_jwks_timeout_seconds":  # the timeout: environment only
            continue
        reference = variables[name.upper()]
        parameter = loaded["Parameters"][reference["Ref"]]
        if name in ("jwt_secret", "jwt_issuer", "jwt_algorithms", "jwt_jwks_url"):
            continue  # deployment-specific: no local default carries over
        default = getattr(defaults, name)
        expected = ",".join(default) if isinstance(default, list) else str(default)
        assert str(parameter["Default"]) == expected, name
