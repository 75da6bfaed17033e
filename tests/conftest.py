"""Shared fixtures: AWS in-process (moto) with tables built from template.yaml, and handler invocation."""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root, for `bench` and `local` (python -m pytest from elsewhere does not put it on sys.path).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.environment import apply_in_process_environment  # noqa: E402

# Settings are read from the environment once per process: fix it before any hangar import runs.
apply_in_process_environment()

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from support import AwsStack, start_aws_stack  # noqa: E402


@pytest.fixture(autouse=True)
def reset_clock() -> Iterator[None]:
    """Tests may move hangar.core.clock forward; every test starts from real time."""
    yield
    from hangar.core import clock

    clock.reset()


@pytest.fixture
def aws() -> Iterator[AwsStack]:
    """moto in-process with every table of template.yaml and the setup-token KMS key; fresh per test."""
    with start_aws_stack() as stack:
        yield stack


# The files that take longest (minutes each; measured), started first: `make test` hands files to its
# two workers in collection order (`--dist loadfile --no-loadscope-reorder`), so the long ones run
# while the many short files fill the other worker, instead of starting last and leaving one idle.
# (xdist's own reordering, by number of tests, started these two- and seven-test files near the end.)
LONGEST_FILES = (
    "tests/e2e/test_webhooks_e2e.py",
    "tests/integration/test_jobs_stateful.py",
    "tests/e2e/test_jobs_e2e.py",
    "tests/e2e/test_agent_e2e.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve().relative_to(Path(_ROOT)).as_posix()
        return LONGEST_FILES.index(path) if path in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: every file's tests keep their order
