"""The Orgs table: one `ORG` item per tenant (license, counters, usage key) plus targets and rate windows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.plans import License, effective_license
from hangar.store.dynamo import Item, Update, client, from_item, is_condition_failure, to_item
from hangar.store.records import Record

ORG_SK = "ORG"


@dataclass(frozen=True, slots=True)
class Org(Record):
    """A tenant's org item: its license (plan, state, overrides and the limits materialized from them),
    the counters transactions compare against those limits, and its API Gateway usage key."""

    org_id: str
    sk: str = ORG_SK
    plan: str | None = None  # none stored: the free plan's limits (hangar.core.plans.effective_license)
    license_state: str = "active"
    overrides: dict[str, Any] | None = None
    license_version: int | None = None  # none until an operator first sets the license
    runner_limit: int | None = None
    concurrent_job_limit: int | None = None
    runner_count: int = 0
    active_jobs: int = 0
    target_count: int = 0
    usage_key_id: str | None = None
    usage_key: str | None = None  # the key's value: the authorizers' usageIdentifierKey
    usage_key_shared: bool | None = None  # on its plan's shared key (hangar.tenancy.tenants)
    created_at: str | None = None
    updated_at: str | None = None

    def license(self) -> License:
        """The plan's limits with this org's overrides applied."""
        return effective_license(self.to_item())


def org_from(item: Item | None) -> Org | None:
    return None if item is None else Org.from_item(item)


def table() -> str:
    return get_settings().orgs_table


def org_key(org_id: str, sk: str = ORG_SK) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "sk": {"S": sk}}


def org_update(org_id: str, **kwargs: Any) -> Update:
    """An UpdateItem of the org item (`hangar.store.dynamo.Update` fields: set, add, condition, ...)."""
    return Update(table=table(), key=org_key(org_id), **kwargs)


def get_org(org_id: str) -> Org | None:
    response = client().get_item(TableName=table(), Key=org_key(org_id), ConsistentRead=True)
    return org_from(from_item(response.get("Item")))


def usage_key(org_id: str) -> str | None:
    """The value of the tenant's usage key (None: none recorded yet, or no such org)."""
    org = get_org(org_id)
    return None if org is None else org.usage_key


def materialized_limits(license_fields: Mapping[str, Any]) -> Item:
    """Limits stored on the org item so transactions can compare counters to them in conditions."""
    license_ = effective_license(dict(license_fields))
    return {"runnerLimit": license_.runnerLimit, "concurrentJobLimit": license_.concurrentJobLimit}


def new_org(org_id: str) -> Org:
    plan = get_settings().default_plan
    limits = materialized_limits({"plan": plan, "licenseState": "active"})
    return Org(
        org_id=org_id,
        plan=plan,
        license_state="active",
        runner_count=0,
        active_jobs=0,
        target_count=0,
        created_at=clock.iso(),
        runner_limit=limits["runnerLimit"],
        concurrent_job_limit=limits["concurrentJobLimit"],
    )


def ensure_org(org_id: str) -> Org:
    """The tenant's org item, created with the deployment's default plan on first use (race-safe)."""
    existing = get_org(org_id)
    if existing is not None:
        return existing
    org = new_org(org_id)
    try:
        client().put_item(
            TableName=table(), Item=to_item(org.to_item()), ConditionExpression="attribute_not_exists(orgId)"
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        raced = get_org(org_id)
        assert raced is not None
        return raced
    return org


def reserve_runner_op(org_id: str) -> dict[str, Any]:
    """Counts one more runner, only while the license is active and below its runner limit."""
    return org_update(
        org_id,
        add={"runnerCount": 1},
        condition="#licenseState = :active AND #runnerCount < #runnerLimit",
        values={"active": "active"},
    ).op()


def release_runner_op(org_id: str) -> dict[str, Any]:
    return _release_op(org_id, "runnerCount")


def _release_op(org_id: str, counter: str) -> dict[str, Any]:
    """One less of a counted thing (runners, targets), never below zero."""
    return org_update(org_id, add={counter: -1}, condition=f"#{counter} > :zero", values={"zero": 0}).op()


def org_or_default(org_id: str) -> Org:
    """The org item, or — for a tenant never seen — what it will be on first use (nothing written:
    read-only routes must not need write access to the Orgs table)."""
    return get_org(org_id) or new_org(org_id)


def put_license_op(org_id: str, license_fields: Item, expected_version: int | None, now: str) -> dict[str, Any]:
    """A TransactWriteItems Update writing plan, licenseState, overrides and the materialized limits,
    creating the org if it was never seen. Optimistic: only if the license is still at `expected_version`
    (None: never set), so two operators' concurrent overrides never silently merge."""
    counters = ("runnerCount", "activeJobs", "targetCount")
    condition = "attribute_not_exists(#licenseVersion)" if expected_version is None else "#licenseVersion = :expected"
    extra: dict[str, Any] = {"now": now, "zero": 0}
    if expected_version is not None:
        extra["expected"] = expected_version
    return org_update(
        org_id,
        set={**license_fields, "licenseVersion": (expected_version or 0) + 1, "updatedAt": now},
        set_expressions=[f"#{name} = if_not_exists(#{name}, :zero)" for name in counters]
        + ["#createdAt = if_not_exists(#createdAt, :now)"],
        condition=condition,
        values=extra,
    ).op()


def reserve_target_op(org_id: str, target_limit: int) -> dict[str, Any]:
    """Counts one more target, only while the license is active and the count is below `target_limit`."""
    return org_update(
        org_id,
        add={"targetCount": 1},
        condition="#licenseState = :active AND (attribute_not_exists(#targetCount) OR #targetCount < :limit)",
        values={"active": "active", "limit": target_limit},
    ).op()


def release_target_op(org_id: str) -> dict[str, Any]:
    return _release_op(org_id, "targetCount")
