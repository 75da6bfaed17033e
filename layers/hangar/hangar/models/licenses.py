"""License requests and views: GET /v1/license and the operator's PUT /v1/orgs/{orgId}/license."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from hangar.licenses import LicenseState, PlanName, Visibility
from hangar.models.common import StrictModel, View

# Bounds on operator overrides: generous, but a typo like 1e12 is refused rather than stored.
MAX_LIMIT = 100_000
LimitOverride = Annotated[int, Field(ge=0, le=MAX_LIMIT, strict=True)]


class PutLicenseRequest(StrictModel):
    """Partial update: a field left out keeps its value; an override set to null goes back to the plan's."""

    plan: PlanName | None = None
    licenseState: LicenseState | None = None
    runnerLimit: LimitOverride | None = None
    concurrentJobLimit: LimitOverride | None = None
    targetLimit: LimitOverride | None = None
    allowedTargetVisibilities: Annotated[list[Visibility], Field(max_length=4)] | None = None

    @field_validator("plan", "licenseState")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only the overrides can be cleared; a plan and a state always exist.
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("allowedTargetVisibilities")
    @classmethod
    def _unique_visibilities(cls, value: list[Visibility] | None) -> list[Visibility] | None:
        return None if value is None else list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _at_least_one_field(self) -> PutLicenseRequest:
        if not self.model_fields_set:
            raise ValueError(
                "at least one of plan, licenseState, runnerLimit, concurrentJobLimit, targetLimit, "
                "allowedTargetVisibilities is required"
            )
        return self


class LicenseSummary(View):
    """The license as readiness shows it (seed 003) — limits plus what they allow right now."""

    plan: PlanName
    licenseState: LicenseState
    canRegisterRunner: bool
    canStartSelfHostedScan: bool
    runnerLimit: int
    concurrentJobLimit: int
    targetLimit: int
    allowedTargetVisibilities: list[Visibility]


class LicenseUsage(View):
    runners: int
    activeJobs: int
    targets: int


class LicenseView(LicenseSummary):
    """GET /v1/license and PUT /v1/orgs/{orgId}/license: the effective license and the tenant's usage."""

    orgId: str
    usage: LicenseUsage
