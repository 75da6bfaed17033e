"""Shared fixtures: AWS in-process (moto) with tables built from template.yaml, and handler invocation."""

from __future__ import annotations

import os

# Settings are read from the environment once per process: fix it before any hangar import runs.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TOKEN_PEPPER": "test-pepper",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Hangar",
        "POWERTOOLS_SERVICE_NAME": "hangar",
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
        "AUDIT_EVENTS_TABLE": "AuditEventsTable",
        "ARTIFACTS_BUCKET": "hangar-test-artifacts",
    }
)
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
    os.environ.pop(_name, None)

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
