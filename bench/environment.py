"""The environment every measurement runs in: the local settings of the functions, tracing off, no real AWS.

`python -m bench` applies it before anything imports `hangar` (settings and Powertools read the
environment once per process); the cold-start subprocesses get the same variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

BENCH_ENVIRONMENT: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "TOKEN_PEPPER": "bench-pepper",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Hangar",
    "POWERTOOLS_SERVICE_NAME": "hangar",
    # The template says INFO; the in-process measurements raise the level back to INFO themselves while
    # they count log bytes, so the bench's own output stays readable.
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "JWT_ALGORITHMS": "HS256",
    "JWT_SECRET": "hangar-local-dev-secret-not-for-production",
    "JWT_ISSUER": "hangar-local",
    "JWT_AUDIENCE": "hangar",
    "RUNNERS_TABLE": "RunnersTable",
    "TOKENS_TABLE": "TokensTable",
    "JOBS_TABLE": "JobsTable",
    "ORGS_TABLE": "OrgsTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "JOB_OUTPUTS_TABLE": "JobOutputsTable",
    "WEBHOOKS_TABLE": "WebhooksTable",
    "ARTIFACTS_BUCKET": "hangar-bench-artifacts",
}

# Variables that would send a client somewhere other than moto (or to a real account).
_UNWANTED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def bench_environment() -> dict[str, str]:
    """This process's environment with the bench's variables applied (for subprocesses)."""
    env = {name: value for name, value in os.environ.items() if name not in _UNWANTED}
    env.update(BENCH_ENVIRONMENT)
    return env


def apply_bench_environment() -> None:
    """Install the bench's environment in this process, and make `support` (tests/) importable."""
    for name in _UNWANTED:
        os.environ.pop(name, None)
    os.environ.update(BENCH_ENVIRONMENT)
    for path in (str(ROOT), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)
