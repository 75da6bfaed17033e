"""Powertools' ColdStart metric is one custom metric for the whole API, not one per function: every API
function publishes it under the same `function_name` dimension (hangar.core.observability)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hangar.core.observability import COLD_START_FUNCTION_NAME
from support import ROOT

# A fresh interpreter, as Lambda cold-starts a function; the route is refused for its scope, so it needs
# no backend. The Lambda context names the function "hangar-test".
SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from support import FakeLambdaContext, handler_module, load_event
event = load_event("GetLicense")
event["requestContext"]["authorizer"]["scopes"] = ""
for _ in range(2):
    handler_module("GetLicense").handler(event, FakeLambdaContext())
"""


def emf_lines(stdout: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_a_cold_start_is_counted_under_the_one_api_function_name_and_only_once() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "tests"), str(ROOT)],
        env={**os.environ, "POWERTOOLS_METRICS_DISABLED": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cold_starts = [line for line in emf_lines(done.stdout) if "ColdStart" in line]
    assert len(cold_starts) == 1, done.stdout  # the second invocation is warm
    assert cold_starts[0]["function_name"] == COLD_START_FUNCTION_NAME
    assert cold_starts[0]["function_name"] != "hangar-test"  # not the function's own name
