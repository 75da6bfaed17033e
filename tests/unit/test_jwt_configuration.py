"""JWT settings fail closed (issue 10 item 3): no secret has a default outside local/, and HS256 with a
missing, placeholder or short secret refuses every JWT with a 401 and one logged configuration error."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from hangar.core.config import JWT_SECRET_NOT_SET, MIN_JWT_SECRET_BYTES, Settings
from hangar.core.errors import Unauthorized
from hangar.identity import auth
from hangar.identity.auth import verify_jwt
from support import template

from local.devtokens import LOCAL_JWT_SECRET

ISSUER = "https://issuer.example"


pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def operator_token(secret: str) -> str:
    """What an attacker mints with a secret they know: an operator token for any org."""
    claims = {"sub": "attacker", "org": "victim", "iss": ISSUER, "aud": "hangar", "exp": int(time.time()) + 300}
    return jwt.encode({**claims, "scope": "admin:licenses runners:manage"}, secret, algorithm="HS256")


def deployed(**environment: str) -> Settings:
    """The settings a function gets from its environment (template.yaml sets these variables)."""
    return Settings.from_env({"JWT_ALGORITHMS": "HS256", "JWT_ISSUER": ISSUER, **environment})


@pytest.mark.parametrize(
    "environment",
    [
        {},  # JWT_SECRET not set at all
        {"JWT_SECRET": ""},  # what the template passed before it had a placeholder
        {"JWT_SECRET": JWT_SECRET_NOT_SET},  # the template's placeholder
    ],
)
def test_hs256_without_a_secret_refuses_the_public_local_secret(environment: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        verify_jwt(operator_token(LOCAL_JWT_SECRET), deployed(**environment))


def test_hs256_refuses_a_secret_shorter_than_32_bytes() -> None:
    short = "s" * (MIN_JWT_SECRET_BYTES - 1)
    with pytest.raises(Unauthorized):
        verify_jwt(operator_token(short), deployed(JWT_SECRET=short))
    enough = "s" * MIN_JWT_SECRET_BYTES
    assert verify_jwt(operator_token(enough), deployed(JWT_SECRET=enough))["org"] == "victim"


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({"JWT_SECRET": "x" * 40, "JWT_ALGORITHMS": "HS256,RS256"}, "mixes"),
        ({"JWT_SECRET": "x" * 40, "JWT_JWKS_URL": "https://issuer.example/jwks"}, "JWT_JWKS_URL"),
        ({"JWT_ALGORITHMS": "RS256"}, "JWT_JWKS_URL"),
        ({"JWT_SECRET": "x" * 40, "JWT_ALGORITHMS": "none"}, "JWT_ALGORITHMS"),
        ({"JWT_SECRET": "x" * 40, "JWT_ISSUER": ""}, "JWT_ISSUER"),
    ],
)
def test_every_unsafe_configuration_is_named(environment: dict[str, str], problem: str) -> None:
    settings = Settings.from_env({"JWT_ALGORITHMS": "HS256", "JWT_ISSUER": ISSUER, **environment})
    found = settings.jwt_configuration_problem()
    assert found is not None and problem in found, found


def test_a_jwks_configuration_with_the_placeholder_is_fine() -> None:
    settings = Settings.from_env(
        {"JWT_ALGORITHMS": "RS256", "JWT_ISSUER": ISSUER, "JWT_JWKS_URL": "https://issuer.example/jwks"}
        | {"JWT_SECRET": JWT_SECRET_NOT_SET}
    )
    assert settings.jwt_configuration_problem() is None


def test_the_problem_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    auth._logged.cache_clear()
    settings = deployed(JWT_SECRET="too-short")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            verify_jwt(operator_token("too-short"), settings)
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert [record.getMessage() for record in errors] == ["JWT authentication is misconfigured; every JWT is refused"]
    assert "too-short" not in caplog.text  # the secret itself is never logged


def _parameter(name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = template()["Parameters"][name]
    return parameter


def test_the_template_placeholder_is_the_one_the_functions_refuse() -> None:
    secret = _parameter("JwtSecret")
    assert secret["Default"] == JWT_SECRET_NOT_SET  # sam deploy --guided: Enter keeps it (NoEcho)
    assert secret["NoEcho"] is True and secret["MinLength"] == MIN_JWT_SECRET_BYTES
    assert len(JWT_SECRET_NOT_SET) >= MIN_JWT_SECRET_BYTES


def test_the_template_refuses_hs256_with_the_placeholder() -> None:
    rule = template()["Rules"]["HmacJwtsNeedASecret"]
    assert {"Fn::Equals": [{"Ref": "JwtAlgorithms"}, "HS256"]} in rule["RuleCondition"]["Fn::Or"]
    assertion = rule["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtSecret"}, JWT_SECRET_NOT_SET]}]}
    assert "PublicKeyJwtsNeedAJwksUrl" in template()["Rules"]
