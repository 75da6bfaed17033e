"""License requests and views: GET /v1/license and the operator's PUT /v1/orgs/{orgId}/license."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from hangar.core.models import StrictModel, View
from hangar.core.plans import LicenseState, PlanName, Visibility
from hangar.identity.auth import ORG_ID_RE

# Bounds on operator overrides: generous, but a typo like 1e12 is refused rather than stored.
MAX_LIMIT = 100_000
LimitOverride = Annotated[int, Field(ge=0, le=MAX_LIMIT, strict=True)]
# A tenant id as the authorizer accepts it (the JWT's `org`, or its `sub`).
OrgId = Annotated[str, StringConstraints(pattern=ORG_ID_RE.pattern)]


def _without_null(schema: dict[str, Any]) -> None:
    """Documents `X | None = None` as X: the field may be left out, not sent as null."""
    branches = schema.pop("anyOf", [])
    schema.update(next(branch for branch in branches if branch != {"type": "null"}))
    schema.pop("default", None)


class PutLicenseRequest(StrictModel):
    """Partial update: a field left out keeps its value; an override set to null goes back to the plan's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    plan: PlanName | None = Field(default=None, json_schema_extra=_without_null)
    licenseState: LicenseState | None = Field(default=None, json_schema_extra=_without_null)
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
    """The license as readiness shows it — limits plus what they allow right now."""

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
