"""The readiness check of seed 003 (GET /v1/runners/readiness, and the summary in GET /v1/runners)."""

from __future__ import annotations

from typing import Any

from pydantic import SerializerFunctionWrapHandler, model_serializer

from hangar.licenses import Visibility
from hangar.models.common import View
from hangar.models.licenses import LicenseSummary
from hangar.models.runners import RunnerStatus, V1Runner


class ReadinessRunner(View):
    id: str
    name: str
    status: RunnerStatus
    configuredConcurrency: int
    currentJobs: int


class Readiness(View):
    """`visibility` appears only when a target was named; `reasons` (ours, not the seed's) says why
    `ready` is false — machine codes, empty when ready."""

    ready: bool
    visibility: Visibility | None = None
    visibilityOk: bool
    runnerOk: bool
    selectedRunnerId: str | None
    license: LicenseSummary
    runners: list[ReadinessRunner]
    reasons: list[str]

    @model_serializer(mode="wrap")
    def _without_absent_visibility(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("visibility") is None:
            data.pop("visibility", None)
        return data


class RunnersWithReadiness(View):
    """GET /v1/runners (seed 003); `nextCursor` is added beside `runners` by the HTTP glue."""

    runners: list[V1Runner]
    readiness: Readiness
