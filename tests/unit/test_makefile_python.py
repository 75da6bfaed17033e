"""`make build` and `make test` need Python 3.13 (sam build installs the layer with the python3.13 runtime's
interpreter): without one they stop at once with a sentence saying what is needed, which the README
quotes; `make run` needs only 3.11+."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_without_python_313_build_and_test_stop_saying_what_is_needed() -> None:
    for target in ("lambda-python", "test"):
        # -n would not run the check; with PYTHON_LAMBDA empty the check is the first thing `make test` runs.
        result = _make(target, "PYTHON_LAMBDA=")
        assert result.returncode != 0
        assert "make build and make test need Python 3.13" in result.stderr, result.stderr
        assert "make run needs only Python 3.11+" in result.stderr


def test_build_runs_the_check_first() -> None:
    plan = _make("-n", "build", "PYTHON_LAMBDA=")
    first = plan.stdout.splitlines()[0]
    assert first.startswith("test -n") and "need Python 3.13" in first, plan.stdout


def test_readme_says_what_build_needs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make build and make test need Python 3.13" in readme
