"""A tenant's license as the API shows it, and the operator's license changes (PUT /v1/orgs/{orgId}/license).

The plans and the effective license (plan + overrides) are in `hangar.core.plans`; this module adds
what the limits allow right now given the org's counters, and the one write that changes them.
"""

from __future__ import annotations

from typing import Any

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.errors import BadRequest, Conflict
from hangar.core.plans import OVERRIDE_FIELDS, License
from hangar.identity.auth import ORG_ID_RE
from hangar.store import orgs
from hangar.store.dynamo import Item
from hangar.store.orgs import Org
from hangar.store.transactions import TransactionCancelled, transact
from hangar.tenancy import tenants
from hangar.tenancy.models.licenses import LicenseSummary, LicenseUsage, LicenseView, PutLicenseRequest

# Optimistic retries of a license write that raced another operator's.
PUT_LICENSE_ATTEMPTS = 3


def usage(org: Org) -> LicenseUsage:
    return LicenseUsage(runners=org.runner_count, activeJobs=org.active_jobs, targets=org.target_count)


def can_register_runner(license_: License, org: Org) -> bool:
    return license_.active and org.runner_count < license_.runnerLimit


# The license's reasons a self-hosted scan may not start, as readiness reports them (in this order).
LICENSE_INACTIVE = "license_inactive"
CONCURRENT_JOB_LIMIT_REACHED = "concurrent_job_limit_reached"
RUNNER_LIMIT_EXCEEDED = "runner_limit_exceeded"


def scan_refusals(license_: License, org: Org) -> list[str]:
    """The license side of readiness: inactive, no free concurrent-job slot, or over the runner limit (a
    plan downgraded below the runners it already has is not ready until runners are removed)."""
    refusals: list[str] = []
    if not license_.active:
        refusals.append(LICENSE_INACTIVE)
    if org.active_jobs >= license_.concurrentJobLimit:
        refusals.append(CONCURRENT_JOB_LIMIT_REACHED)
    if org.runner_count > license_.runnerLimit:
        refusals.append(RUNNER_LIMIT_EXCEEDED)
    return refusals


def can_start_self_hosted_scan(license_: License, org: Org) -> bool:
    return not scan_refusals(license_, org)


def license_summary(org: Org) -> LicenseSummary:
    license_ = org.license()
    return LicenseSummary(
        **license_.model_dump(),
        canRegisterRunner=can_register_runner(license_, org),
        canStartSelfHostedScan=can_start_self_hosted_scan(license_, org),
    )


def license_view(org: Org) -> LicenseView:
    return LicenseView(**license_summary(org).model_dump(), orgId=org.org_id, usage=usage(org))


def get_license(org_id: str) -> LicenseView:
    """The caller's effective license and usage (a tenant never seen reads as the default plan)."""
    return license_view(orgs.org_or_default(org_id))


def _license_fields(org: Org, change: PutLicenseRequest) -> Item:
    """The stored license attributes after applying `change` to `org`: absent fields keep their value,
    an override set to null is removed (the plan's value applies again)."""
    requested: dict[str, Any] = change.model_dump(exclude_unset=True)
    overrides: Item = dict(org.overrides or {})
    for name in OVERRIDE_FIELDS:
        if name in requested:
            if requested[name] is None:
                overrides.pop(name, None)
            else:
                overrides[name] = requested[name]
    fields: Item = {
        "plan": requested.get("plan") or org.plan,
        "licenseState": requested.get("licenseState") or org.license_state,
        "overrides": overrides,
    }
    # Limits that transactions compare counters against live on the org item, in the same write.
    fields.update(orgs.materialized_limits(fields))
    return fields


def put_org_license(org_id: str, change: PutLicenseRequest) -> LicenseView:
    """Sets an org's plan, state and overrides (creating the org if it was never seen) and returns the
    effective license. Operator-only: the handler checks `admin:licenses`."""
    if not ORG_ID_RE.fullmatch(org_id):
        raise BadRequest("orgId is not a valid org id", field="orgId")
    for _ in range(PUT_LICENSE_ATTEMPTS):
        current = orgs.org_or_default(org_id)
        expected = current.license_version
        fields = _license_fields(current, change)
        now = clock.iso()
        try:
            transact(
                {
                    "org": orgs.put_license_op(org_id, fields, expected, now),
                    # In the tenant's own log: its security team sees who changed its license.
                    "audit": audit.operation("license.update", org_id, "org", org_id, by_operator=True),
                }
            )
        except TransactionCancelled as cancelled:
            if cancelled["org"].condition_failed:
                continue  # another operator's write landed since the read
            raise
        stored = Org.from_item({**current.to_item(), **fields, "licenseVersion": (expected or 0) + 1, "updatedAt": now})
        return license_view(tenants.follow_license(stored))
    raise Conflict("The license changed concurrently; retry", code="license_conflict")
