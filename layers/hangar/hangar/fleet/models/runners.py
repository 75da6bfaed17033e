"""Runner requests and the runner as each dialect shows it (`/api` and `/v1`: docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hangar.core.models import Concurrency, Labels, Name, RunnerStatus, StrictModel, View


class CreateRunnerRequest(StrictModel):
    name: Name
    labels: Labels = Field(default_factory=list)
    configuredConcurrency: Concurrency = 1


class UpdateRunnerRequest(StrictModel):
    name: Name | None = None
    labels: Labels | None = None
    configuredConcurrency: Concurrency | None = None


class ApiRunner(View):
    """A runner in the `/api` dialect: `_id`, `lastHeartbeat` as first published."""

    id: str = Field(alias="_id")
    name: str
    status: RunnerStatus
    labels: list[str]
    version: str | None = None
    lastHeartbeat: str | None = None
    jobsCompleted: int = 0
    configuredConcurrency: int = 1
    currentJobs: int = 0
    tokenPrefix: str | None = None
    systemInfo: dict[str, Any] | None = None
    createdAt: str | None = None
    updatedAt: str | None = None


class ApiCreatedRunner(View):
    """What POST /api/runners returns: the runner token, shown this once."""

    id: str = Field(alias="_id")
    name: str
    token: str
    status: RunnerStatus
    labels: list[str]
    tokenPrefix: str


class V1Runner(View):
    """A runner in the `/v1` dialect, token metadata redacted to its prefix."""

    id: str
    name: str
    tokenPrefix: str | None = None
    status: RunnerStatus
    labels: list[str]
    version: str | None = None
    containerEngine: str | None = None
    configuredConcurrency: int = 1
    currentJobs: int = 0
    providerState: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None
    lastHeartbeatAt: str | None = None
    jobsCompleted: int = 0


class ApiDeletedRunner(View):
    id: str = Field(alias="_id")
    deleted: bool
