"""The layers stay lean (issue 12): no second botocore (the python3.13 runtime ships boto3 and botocore),
JWT verification's PyJWT and cryptography only where JWTs are verified, and the Hangar layer that every
function loads at most 25 MB unzipped as `make build` leaves it."""

from __future__ import annotations

import ast
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from support import ROOT, template

from bench.cold_start import HANGAR_LAYER_TARGET_BYTES, SAM_BUILD_DIR, measure_layer_size

TEMPLATE = template()
HANGAR_PACKAGE = ROOT / "layers" / "hangar" / "hangar"
# What the Lambda runtime provides, or what only the JWT layer may bring.
NOT_IN_THE_HANGAR_LAYER = {"boto3", "botocore", "s3transfer", "aws-xray-sdk", "wrapt", "pyjwt", "cryptography"}
NOT_IN_ANY_LAYER = {"boto3", "botocore", "s3transfer", "aws-xray-sdk"}
JWT_IMPORTERS = {"auth.py", "jwks.py"}  # hangar modules that may import jwt: auth only inside verify_jwt


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def requirement_lines(requirements_file: Path) -> list[str]:
    return [line.strip() for line in requirements_file.read_text().splitlines() if line.strip() and line[0] != "#"]


def dependency_closure(lines: list[str]) -> set[str]:
    """Every distribution `pip install` of these requirement lines installs, from the installed
    distributions' metadata (the venv holds the same pins), extras and markers evaluated."""
    pending = [Requirement(line) for line in lines]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = _name(requirement.name)
        if name in found and not requirement.extras:
            continue
        found.add(name)
        for raw in metadata.requires(requirement.name) or []:
            dependency = Requirement(raw)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in (requirement.extras or {""})
            )
            if wanted:
                pending.append(dependency)
    return found


def test_the_hangar_layer_brings_no_botocore_no_xray_sdk_and_no_jwt_libraries() -> None:
    closure = dependency_closure(requirement_lines(ROOT / "layers" / "hangar" / "requirements.txt"))

    assert {"aws-lambda-powertools", "pydantic", "pydantic-core"} <= closure
    assert closure & NOT_IN_THE_HANGAR_LAYER == set()


def test_the_jwt_layer_brings_pyjwt_and_cryptography_and_no_botocore() -> None:
    closure = dependency_closure(requirement_lines(ROOT / "layers" / "jwt" / "requirements.txt"))

    assert {"pyjwt", "cryptography"} <= closure
    assert closure & NOT_IN_ANY_LAYER == set()


def test_the_dependency_closure_follows_extras() -> None:
    """The check can fail: PyJWT alone needs nothing, its `crypto` extra brings cryptography."""
    assert "cryptography" not in dependency_closure(["pyjwt==2.15.1"])
    assert "cryptography" in dependency_closure(["pyjwt[crypto]==2.15.1"])


def test_only_the_user_authorizer_loads_the_jwt_layer() -> None:
    assert TEMPLATE["Globals"]["Function"]["Layers"] == [{"Ref": "HangarLayer"}]
    assert TEMPLATE["Resources"]["JwtLayer"]["Properties"]["ContentUri"] == "layers/jwt/"
    with_own_layers = {
        logical_id: resource["Properties"]["Layers"]
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function" and "Layers" in resource["Properties"]
    }
    assert with_own_layers == {"UserAuthorizerFunction": [{"Ref": "JwtLayer"}]}


def _imports_jwt(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in ("jwt", "cryptography") for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("jwt", "cryptography")


def test_jwt_is_imported_only_where_jwts_are_verified() -> None:
    """Other functions run without the JWT layer: none of their code may import jwt or cryptography."""
    sources = [path for path in HANGAR_PACKAGE.rglob("*.py") if "agent_wheel" not in path.parts]
    sources += list((ROOT / "functions").rglob("*.py"))
    importers = {
        path.name for path in sources if any(_imports_jwt(node) for node in ast.walk(ast.parse(path.read_text())))
    }
    assert importers <= JWT_IMPORTERS
    auth = ast.parse((HANGAR_PACKAGE / "identity" / "auth.py").read_text())
    assert not any(_imports_jwt(node) for node in auth.body)  # only inside verify_jwt
    jwks_importers = {
        path.name
        for path in sources
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ImportFrom)
        and node.module == "hangar.identity"
        and any(a.name == "jwks" for a in node.names)
    }
    assert (
        jwks_importers == set()
    )  # hangar.identity.jwks is imported lazily, by the JWT path of hangar.identity.auth only


def test_the_built_hangar_layer_is_at_most_25_mb_without_botocore() -> None:
    if not (SAM_BUILD_DIR / "HangarLayer").is_dir():
        pytest.skip("no make build output (.aws-sam/build); make test builds before it runs the tests")
    layer = measure_layer_size("HangarLayer")
    entries = {entry for entry, _ in layer.largest}
    assert layer.total_bytes <= HANGAR_LAYER_TARGET_BYTES, layer
    python = SAM_BUILD_DIR / "HangarLayer" / "python"
    assert not (python / "botocore").exists() and not (python / "boto3").exists(), sorted(entries)
    assert not (python / "cryptography").exists()
