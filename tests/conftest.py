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
