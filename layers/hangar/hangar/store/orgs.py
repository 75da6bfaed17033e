"""The Orgs table: one `ORG` item per tenant (license, counters, usage key) plus targets and rate windows."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.plans import effective_license
from hangar.store.dynamo import Item, client, from_item, is_condition_failure, to_item, values

ORG_SK = "ORG"


def table() -> str:
    return get_settings().orgs_table


def org_key(org_id: str, sk: str = ORG_SK) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "sk": {"S": sk}}


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
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id),
            "UpdateExpression": "ADD runnerCount :one",
            "ConditionExpression": "licenseState = :active AND runnerCount < runnerLimit",
            "ExpressionAttributeValues": values(one=1, active="active"),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def release_runner_op(org_id: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id),
            "UpdateExpression": "ADD runnerCount :minus",
            "ConditionExpression": "runnerCount > :zero",
            "ExpressionAttributeValues": values(minus=-1, zero=0),
        }
    }


def org_or_default(org_id: str) -> Item:
    """The org item, or — for a tenant never seen — what it will be on first use (nothing written:
    read-only routes must not need write access to the Orgs table)."""
    return get_org(org_id) or new_org(org_id)


def put_license_op(org_id: str, license_fields: Item, expected_version: int | None, now: str) -> dict[str, Any]:
    """A TransactWriteItems Update writing plan, licenseState, overrides and the materialized limits,
    creating the org if it was never seen. Optimistic: only if the license is still at `expected_version`
    (None: never set), so two operators' concurrent overrides never silently merge."""
    sets = [f"#{name} = :{name}" for name in license_fields]
    sets += [
        "licenseVersion = :nextVersion",
        "updatedAt = :now",
        "runnerCount = if_not_exists(runnerCount, :zero)",
        "activeJobs = if_not_exists(activeJobs, :zero)",
        "targetCount = if_not_exists(targetCount, :zero)",
        "createdAt = if_not_exists(createdAt, :now)",
    ]
    condition = "attribute_not_exists(licenseVersion)" if expected_version is None else "licenseVersion = :expected"
    extra: dict[str, Any] = {"nextVersion": (expected_version or 0) + 1, "now": now, "zero": 0}
    if expected_version is not None:
        extra["expected"] = expected_version
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {f"#{name}": name for name in license_fields},
            "ExpressionAttributeValues": values(**license_fields, **extra),
        }
    }


def reserve_target_op(org_id: str, target_limit: int) -> dict[str, Any]:
    """Counts one more target, only while the license is active and the count is below `target_limit`."""
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id),
            "UpdateExpression": "ADD targetCount :one",
            "ConditionExpression": (
                "licenseState = :active AND (attribute_not_exists(targetCount) OR targetCount < :limit)"
            ),
            "ExpressionAttributeValues": values(one=1, active="active", limit=target_limit),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def release_target_op(org_id: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table(),
            "Key": org_key(org_id),
            "UpdateExpression": "ADD targetCount :minus",
            "ConditionExpression": "targetCount > :zero",
            "ExpressionAttributeValues": values(minus=-1, zero=0),
        }
    }
