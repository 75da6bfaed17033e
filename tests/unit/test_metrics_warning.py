"""What a function's first invocations print of Powertools Metrics: no "No application metrics to
publish" warning, and one `ColdStart` metric for the whole API — every API function publishes it under the
same `function_name` dimension (hangar.core.observability), not its own name (one metric, not 42)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hangar.core.observability import COLD_START_FUNCTION_NAME
from support import ROOT

# A fresh interpreter, as Lambda runs a function (pytest's own warning filters do not apply there): a
# route refused for its scope returns before any AWS call, so it needs no backend, and flushes no metric
# of its own. The Lambda context names the function "hangar-test".
SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from support import FakeLambdaContext, handler_module, load_event
event = load_event("GetLicense")
event["requestContext"]["authorizer"]["scopes"] = ""
for _ in range(2):
    print(handler_module("GetLicense").handler(event, FakeLambdaContext())["statusCode"])
"""


@pytest.fixture(scope="module")
def two_invocations() -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "tests"), str(ROOT)],
        env={**os.environ, "PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_an_invocation_without_application_metrics_logs_no_powertools_warning(
    two_invocations: subprocess.CompletedProcess[str],
) -> None:
    assert two_invocations.stdout.split()[-2:] == ["403", "403"]  # after the cold-start metric line
    assert "No application metrics to publish" not in two_invocations.stderr


def test_a_cold_start_is_counted_once_under_the_one_api_function_name(
    two_invocations: subprocess.CompletedProcess[str],
) -> None:
    lines = [json.loads(line) for line in two_invocations.stdout.splitlines() if line.startswith("{")]
    cold_starts = [line for line in lines if "ColdStart" in line]
    assert len(cold_starts) == 1, two_invocations.stdout  # the second invocation is warm
    assert cold_starts[0]["function_name"] == COLD_START_FUNCTION_NAME  # not the function's own, hangar-test
