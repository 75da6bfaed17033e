"""The keys of seed 003's /v1 examples (the API document the product was specified from), for the
in-process and the HTTP tests alike: every one of them must keep coming back."""

from __future__ import annotations

SEED_V1_RUNNER_KEYS = {
    "id",
    "name",
    "tokenPrefix",
    "status",
    "version",
    "containerEngine",
    "configuredConcurrency",
    "currentJobs",
    "providerState",
    "capabilities",
    "lastHeartbeatAt",
}
"""A runner of GET /v1/runners."""

SEED_READINESS_LICENSE_KEYS = {
    "plan",
    "licenseState",
    "canRegisterRunner",
    "canStartSelfHostedScan",
    "runnerLimit",
    "concurrentJobLimit",
}
"""The license of GET /v1/runners/readiness's example."""

SEED_LICENSE_KEYS = SEED_READINESS_LICENSE_KEYS | {"targetLimit", "allowedTargetVisibilities"}
"""The license both examples show between them (GET /v1/runners's adds the target limits)."""

SEED_LIST_READINESS_KEYS = {"ready", "visibilityOk", "runnerOk", "selectedRunnerId", "license", "runners"}
"""GET /v1/runners's `readiness`."""

SEED_READINESS_KEYS = SEED_LIST_READINESS_KEYS | {"visibility"}
"""GET /v1/runners/readiness."""
