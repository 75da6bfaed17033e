"""The agent's hot paths stay light at a cold start: each hot-path handler module is imported in a fresh
interpreter (as Lambda's init phase does, from its code directory) and must not load a module of the
deny-list. Counted in modules, never in time: `make bench` section 3 measures the time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (code directory, handler module): heartbeat, poll, job status, runner authorizer, log append.
HOT_PATH_HANDLERS = [
    ("functions/agent", "heartbeat"),
    ("functions/agent", "poll_job"),
    ("functions/agent", "update_job_status"),
    ("functions/authorizers", "runner_authorizer"),
    ("functions/agent", "append_job_log"),
]

# Top-level packages no hot path needs: the X-Ray SDK (a Powertools Tracer), JWT verification (only the
# user authorizer verifies JWTs).
DENIED_PACKAGES = ("aws_xray_sdk", "jwt", "cryptography")
# Hangar's management and recovery machinery: runner and key management, enrollment, tenants and their
# usage plans, job creation, targets, readiness, install script, JWKS, and the sweeper's job recovery.
DENIED_MODULES = (
    "hangar.jobs.recovery",
    "hangar.jobs.sweeper",
    "hangar.fleet.runners",
    "hangar.jobs.service",
    "hangar.tenancy.api_keys",
    "hangar.fleet.enrollment",
    "hangar.tenancy.tenants",
    "hangar.tenancy.usage_plans",
    "hangar.tenancy.licensing",
    "hangar.tenancy.targets",
    "hangar.fleet.readiness",
    "hangar.fleet.install_script",
    "hangar.identity.jwks",
    "hangar.store.kms",
)

IMPORT_SCRIPT = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(code_dir: str, module: str) -> set[str]:
    """Every module a fresh interpreter holds after importing `module` from `code_dir`."""
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "hangar"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT, module],
        cwd=ROOT / code_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def denied(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if name.split(".")[0] in DENIED_PACKAGES
        or any(name == root or name.startswith(root + ".") for root in DENIED_MODULES)
    )


@pytest.mark.parametrize(("code_dir", "module"), HOT_PATH_HANDLERS, ids=[module for _, module in HOT_PATH_HANDLERS])
def test_hot_path_handler_imports_nothing_on_the_deny_list(code_dir: str, module: str) -> None:
    modules = loaded_modules(code_dir, module)

    assert "hangar.core.observability" in modules  # it really loaded Hangar's code
    assert denied(modules) == []


def test_the_deny_list_catches_what_management_routes_import() -> None:
    """The check can fail: a management handler (runner deletion) loads job recovery and runner management."""
    found = denied(loaded_modules("functions/runners", "delete_runner"))

    assert {"hangar.jobs.recovery", "hangar.fleet.runners"} <= set(found)
