"""Enrollment tokens and registration (`/v1`), and the runner-token routes' answers (`/api`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hangar.core.models import Concurrency, Labels, Name, StrictModel, View
from hangar.fleet.models.heartbeat import ReportedObject, ShortText
from hangar.fleet.models.runners import V1Runner

MIN_ENROLLMENT_TTL_SECONDS = 60
MAX_ENROLLMENT_TTL_SECONDS = 86400

EnrollmentTtl = Annotated[int, Field(strict=True, ge=MIN_ENROLLMENT_TTL_SECONDS, le=MAX_ENROLLMENT_TTL_SECONDS)]


class CreateEnrollmentTokenRequest(StrictModel):
    """POST /v1/runners/enrollment-tokens: `name` is the runner name suggested at registration."""

    name: Name | None = None
    ttlSeconds: EnrollmentTtl | None = None


class EnrollmentToken(View):
    """The raw enrollment token, returned once."""

    token: str
    tokenPrefix: str
    expiresAt: str


class RegisterRunnerRequest(StrictModel):
    """POST /v1/runners/register: the `hge_` token is the credential; the rest describes the runner."""

    # Any string: a token of the wrong shape is a 401 token_invalid, not a 400.
    token: str
    name: Name | None = None
    labels: Labels = Field(default_factory=list)
    version: ShortText | None = None
    containerEngine: ShortText | None = None
    configuredConcurrency: Concurrency = 1
    capabilities: ReportedObject | None = None
    providerState: ReportedObject | None = None


class RegisteredRunner(View):
    """The runner, its `hgr_` token (shown this once) and how often the agent should call."""

    runner: V1Runner
    token: str
    heartbeatIntervalSeconds: int
    pollIntervalSeconds: int


class RegeneratedToken(View):
    """POST /api/runners/{runnerId}/regenerate-token: the new token, shown this once."""

    id: str = Field(alias="_id")
    token: str
    tokenPrefix: str


class SetupInfo(View):
    """GET /api/runners/{runnerId}/setup-info: what the CLI needs to install the agent."""

    runnerId: str
    apiUrl: str
    tokenPrefix: str
    # The plaintext only until the runner first authenticates; null afterwards (see `hint`).
    token: str | None
    installCommand: str
    hint: str | None = None
