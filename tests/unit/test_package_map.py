"""The package map of docs/conventions.md, enforced: a hangar package imports only itself and the
packages below it, handlers never reach the data layer, and the map in the docs is the one tested."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANGAR = ROOT / "layers" / "hangar" / "hangar"
FUNCTIONS = ROOT / "functions"

# Lowest first: each package may import the packages before it (and itself), never one after it.
LAYERS = ["core", "store", "audit", "identity", "tenancy", "jobs", "fleet", "events", "api"]


def _hangar_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every hangar import in a file, lazy (function-level) imports included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module == "hangar":
                found += [(node.lineno, f"hangar.{alias.name}") for alias in node.names]
            elif node.module.startswith("hangar."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("hangar.")]
    return found


def _package(module: str) -> str:
    return module.split(".")[1]


def _sources(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "agent_wheel" not in path.parts)


def test_every_hangar_module_is_in_a_package_of_the_map() -> None:
    top_level = {path.name for path in HANGAR.iterdir() if path.suffix == ".py"}
    assert top_level == {"__init__.py"}  # no module outside a package
    packages = {path.name for path in HANGAR.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert packages == set(LAYERS)


@pytest.mark.parametrize(
    "path", [p for p in _sources(HANGAR) if p.parent != HANGAR], ids=lambda path: str(path.relative_to(HANGAR))
)
def test_a_package_imports_only_packages_below_it(path: Path) -> None:
    own = path.relative_to(HANGAR).parts[0]
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    wrong = [f"line {line}: {module}" for line, module in _hangar_imports(path) if _package(module) not in allowed]
    assert wrong == [], f"{own} may import only {sorted(allowed)} (docs/conventions.md)"


@pytest.mark.parametrize("path", _sources(FUNCTIONS), ids=lambda path: str(path.relative_to(FUNCTIONS)))
def test_handlers_never_import_the_data_layer(path: Path) -> None:
    """A handler calls its domain package; only the domain speaks to the store."""
    wrong = [f"line {line}: {module}" for line, module in _hangar_imports(path) if _package(module) == "store"]
    assert wrong == []


def test_the_map_in_the_docs_is_the_tested_one() -> None:
    conventions = (ROOT / "docs" / "conventions.md").read_text()
    assert " → ".join(LAYERS) in conventions
