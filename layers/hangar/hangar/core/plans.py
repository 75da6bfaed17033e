"""License plans (free, team, enterprise: docs/limits.md) and the effective license of a tenant."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Visibility = Literal["public", "staging_preview", "private_internal", "localhost"]
LicenseState = Literal["active", "expired", "suspended"]
PlanName = Literal["free", "team", "enterprise"]

ALL_VISIBILITIES: list[Visibility] = ["public", "staging_preview", "private_internal", "localhost"]


class License(BaseModel):
    plan: PlanName
    licenseState: LicenseState = "active"
    runnerLimit: int
    concurrentJobLimit: int
    targetLimit: int
    allowedTargetVisibilities: list[Visibility]

    @property
    def active(self) -> bool:
        return self.licenseState == "active"


PLANS: dict[str, License] = {
    "free": License(
        plan="free", runnerLimit=1, concurrentJobLimit=1, targetLimit=3, allowedTargetVisibilities=["public"]
    ),
    "team": License(
        plan="team", runnerLimit=10, concurrentJobLimit=10, targetLimit=25, allowedTargetVisibilities=ALL_VISIBILITIES
    ),
    "enterprise": License(
        plan="enterprise",
        runnerLimit=100,
        concurrentJobLimit=100,
        targetLimit=250,
        allowedTargetVisibilities=ALL_VISIBILITIES,
    ),
}

OVERRIDE_FIELDS = ("runnerLimit", "concurrentJobLimit", "targetLimit", "allowedTargetVisibilities")


def effective_license(org: dict[str, Any]) -> License:
    """The plan's limits with the org's stored overrides (`overrides` map) applied."""
    base = PLANS.get(str(org.get("plan")), PLANS["free"])
    stored = org.get("overrides") or {}
    overrides = {name: stored[name] for name in OVERRIDE_FIELDS if stored.get(name) is not None}
    return base.model_copy(update={"licenseState": org.get("licenseState", "active"), **overrides})
