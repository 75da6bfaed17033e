"""How the test suites are laid out, enforced: no test module imports a `conftest`.

pytest imports every directory's conftest.py under the one module name `conftest` (dropping the last
one from sys.modules first), so `from conftest import X` in a test module gets whichever suite's
conftest was loaded last: `pytest tests/e2e tests/browser` failed to collect. Shared helpers live in
a module named for the suite instead."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _conftest_imports(path: Path) -> list[int]:
    def imports_conftest(node: ast.AST) -> bool:
        if isinstance(node, ast.ImportFrom):
            return not node.level and node.module == "conftest"
        return isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names)

    return [node.lineno for node in ast.walk(ast.parse(path.read_text())) if imports_conftest(node)]


def test_no_test_module_imports_a_conftest() -> None:
    sources = [path for path in TESTS.rglob("*.py") if "node_modules" not in path.parts]
    assert len(sources) > 50  # the walk found the suites
    wrong = {str(path.relative_to(TESTS)): lines for path in sources if (lines := _conftest_imports(path))}
    assert wrong == {}
