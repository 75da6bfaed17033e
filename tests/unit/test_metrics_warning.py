"""Powertools' "No application metrics to publish" warning stays out of the functions' logs."""

from __future__ import annotations

import os
import subprocess
import sys

from support import ROOT

# A fresh interpreter, as Lambda runs a function (pytest's own warning filters do not apply there): a
# route refused for its scope returns before any AWS call, so it needs no backend, and flushes no metric.
SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from support import FakeLambdaContext, handler_module, load_event
event = load_event("GetLicense")
event["requestContext"]["authorizer"]["scopes"] = ""
for _ in range(2):
    print(handler_module("GetLicense").handler(event, FakeLambdaContext())["statusCode"])
"""


def test_an_invocation_without_application_metrics_logs_no_powertools_warning() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "tests"), str(ROOT)],
        env={**os.environ, "PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["403", "403"]  # after the cold-start metric line
    assert "No application metrics to publish" not in done.stderr
