"""The Orgs table: one `ORG` item per tenant (license, counters, usage key) plus targets and rate windows."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from hangar import clock
from hangar.config import get_settings
from hangar.licenses import effective_license
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
