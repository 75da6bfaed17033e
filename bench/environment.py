"""The environment every in-process run of the functions uses: the bench (`python -m bench`) and the tests
(tests/conftest.py) alike. The functions' local settings, tracing off, and no real AWS: every client goes
to moto.

Both apply it before anything imports `hangar` (settings and Powertools read the environment once per
process); the bench's cold-start subprocesses get the same variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

IN_PROCESS_ENVIRONMENT: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "TOKEN_PEPPER": "in-process-pepper",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Hangar",
    "POWERTOOLS_SERVICE_NAME": "hangar",
    # The template says INFO; the bench's in-process measurements raise the level back to INFO themselves
    # while they count log bytes, so the bench's and pytest's own output stay readable.
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "JWT_ALGORITHMS": "HS256",
    "JWT_SECRET": "hangar-local-dev-secret-not-for-production",
    "JWT_ISSUER": "hangar-local",
    "JWT_AUDIENCE": "hangar",
    # The tables' logical ids: tests/support.py and the bench create them in moto under these names.
    "RUNNERS_TABLE": "RunnersTable",
    "TOKENS_TABLE": "TokensTable",
    "JOBS_TABLE": "JobsTable",
    "ORGS_TABLE": "OrgsTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "JOB_OUTPUTS_TABLE": "JobOutputsTable",
    "WEBHOOKS_TABLE": "WebhooksTable",
    "AUDIT_EVENTS_TABLE": "AuditEventsTable",
    "ARTIFACTS_BUCKET": "hangar-in-process-artifacts",
}
BENCH_ENVIRONMENT = IN_PROCESS_ENVIRONMENT

# Variables that would send a client somewhere other than moto (or to a real account).
_UNWANTED = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)


def bench_environment() -> dict[str, str]:
    """This process's environment with the in-process variables applied (for subprocesses)."""
    env = {name: value for name, value in os.environ.items() if name not in _UNWANTED}
    env.update(IN_PROCESS_ENVIRONMENT)
    return env


def apply_in_process_environment() -> None:
    """Install the in-process environment in this process (before anything imports `hangar`)."""
    for name in _UNWANTED:
        os.environ.pop(name, None)
    os.environ.update(IN_PROCESS_ENVIRONMENT)


def apply_bench_environment() -> None:
    """The in-process environment, and `support` (tests/) importable for the bench's measurements."""
    apply_in_process_environment()
    for path in (str(ROOT), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)
