"""The Orgs table: one `ORG` item per tenant (license, counters, usage key) plus targets and rate windows."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.plans import effective_license
from hangar.store.dynamo import Item, Update, client, from_item, is_condition_failure, to_item

ORG_SK = "ORG"


def table() -> str:
    return get_settings().orgs_table


def org_key(org_id: str, sk: str = ORG_SK) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "sk": {"S": sk}}


def org_update(org_id: str, **kwargs: Any) -> Update:
    """An UpdateItem of the org item (`hangar.store.dynamo.Update` fields: set, add, condition, ...)."""
    return Update(table=table(), key=org_key(org_id), **kwargs)


def get_org(org_id: str) -> Item | None:
    response = client().get_item(TableName=table(), Key=org_key(org_id), ConsistentRead=True)
    return from_item(response.get("Item"))


def materialized_limits(org: Item) -> Item:
    """Limits stored on the org item so transactions can compare counters to them in conditions."""
    license_ = effective_license(org)
    return {"runnerLimit": license_.runnerLimit, "concurrentJobLimit": license_.concurrentJobLimit}


def new_org(org_id: str) -> Item:
    org: Item = {
        "orgId": org_id,
        "sk": ORG_SK,
        "plan": get_settings().default_plan,
        "licenseState": "active",
        "runnerCount": 0,
        "activeJobs": 0,
        "targetCount": 0,
        "createdAt": clock.iso(),
    }
    org.update(materialized_limits(org))
    return org


def ensure_org(org_id: str) -> Item:
    """The tenant's org item, created with the deployment's default plan on first use (race-safe)."""
    existing = get_org(org_id)
    if existing is not None:
        return existing
    org = new_org(org_id)
    try:
        client().put_item(TableName=table(), Item=to_item(org), ConditionExpression="attribute_not_exists(orgId)")
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


def org_or_default(org_id: str) -> Item:
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
