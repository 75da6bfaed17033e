"""The readiness check (GET /v1/runners/readiness, and the summary in GET /v1/runners)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hangar.core.models import RunnerStatus, View
from hangar.core.plans import Visibility
from hangar.fleet.models.runners import V1Runner
from hangar.tenancy.models.licenses import LicenseSummary


class ReadinessRunner(View):
    id: str
    name: str
    status: RunnerStatus
    configuredConcurrency: int
    currentJobs: int


class Readiness(View):
    """`visibility` appears only when a target was named; `reasons` (a Hangar addition to the published fields) says why
    `ready` is false — machine codes, empty when ready."""

    # Every field but `visibility` is always sent (none other has a default): only it is optional.
    model_config = ConfigDict(populate_by_name=True, json_schema_serialization_defaults_required=False)

    ready: bool
    visibility: Visibility | None = Field(default=None, exclude_if=lambda value: value is None)
    visibilityOk: bool
    runnerOk: bool
    selectedRunnerId: str | None
    license: LicenseSummary
    runners: list[ReadinessRunner]
    reasons: list[str]


class RunnersWithReadiness(View):
    """GET /v1/runners: a page of runners, and readiness over the whole fleet."""

    runners: list[V1Runner]
    readiness: Readiness
    nextCursor: str | None = None
