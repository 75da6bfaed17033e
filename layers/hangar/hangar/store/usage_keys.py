"""API Gateway keys and usage plans (the usage identifier keys of tenants), and the org-item fields that
record a tenant's key (`usageKeyId`, `usageKey`).

The key's value is not a credential here: the API takes keys from the authorizers
(`ApiKeySourceType: AUTHORIZER`), never from clients, so storing it lets the authorizers return it with
no extra call (runner tokens copy it at creation).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hangar.core import clock
from hangar.store.dynamo import Update, apply_if, from_item
from hangar.store.dynamo import client as dynamo_client
from hangar.store.orgs import Org, org_from, org_key, org_update, table


@lru_cache(maxsize=1)
def client() -> Any:
    """The process-wide API Gateway client (its control-plane calls are throttled per account: retry)."""
    return boto3.client(
        "apigateway", config=Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=3, read_timeout=10)
    )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ApiKeyQuotaReached(Exception):
    """The account's API-key quota in this region (10,000 by default) is used up."""


def create_key(name: str, description: str) -> tuple[str, str]:
    """A new enabled API key (API Gateway generates its value); (key id, value)."""
    try:
        created = client().create_api_key(name=name, description=description, enabled=True)
    except ClientError as error:
        if _error_code(error) == "LimitExceededException":
            raise ApiKeyQuotaReached(str(error)) from None
        raise
    return str(created["id"]), str(created["value"])


def delete_key(key_id: str) -> None:
    """Deletes the key (which detaches it from every usage plan); a key already gone is fine."""
    try:
        client().delete_api_key(apiKey=key_id)
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise


def key_value(key_id: str) -> str:
    return str(client().get_api_key(apiKey=key_id, includeValue=True)["value"])


def usage_plans_of_key(key_id: str) -> list[str]:
    """Ids of the usage plans the key is attached to."""
    plan_ids: list[str] = []
    for page in client().get_paginator("get_usage_plans").paginate(keyId=key_id):
        plan_ids.extend(str(plan["id"]) for plan in page.get("items", []))
    return plan_ids


def attach_key(usage_plan_id: str, key_id: str) -> None:
    """Adds the key to the usage plan; already attached is fine."""
    try:
        client().create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")
    except ClientError as error:
        if _error_code(error) != "ConflictException":
            raise


def detach_key(usage_plan_id: str, key_id: str) -> None:
    """Removes the key from the usage plan; not attached is fine."""
    try:
        client().delete_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id)
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise


@lru_cache(maxsize=1)
def usage_plan_ids_by_name() -> dict[str, str]:
    """Every usage plan of the account and region by name, read once per container (they change only
    with a deployment); `forget_usage_plans()` drops the cache when a name is missing."""
    found: dict[str, str] = {}
    for page in client().get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            found[str(plan.get("name", ""))] = str(plan["id"])
    return found


def forget_usage_plans() -> None:
    usage_plan_ids_by_name.cache_clear()


def store_org_key(org_id: str, key_id: str, value: str, shared: bool = False) -> Org | None:
    """Records the tenant's key on its org item, only if it has none yet (two first requests may race);
    the org item as it is now, or None when a key was recorded first (another request's, or this one's
    own first attempt, whose response was lost: the caller reads the org to tell which)."""
    return _set_org_key(org_id, key_id, value, shared, "attribute_exists(#orgId) AND attribute_not_exists(#usageKeyId)")


def replace_org_key(org_id: str, old_key_id: str, key_id: str, value: str) -> Org | None:
    """Gives a tenant on a shared key its own key, only if its key is still `old_key_id`; the org item as
    it is now, or None when it changed meanwhile."""
    return _set_org_key(org_id, key_id, value, False, "#usageKeyId = :old", {"old": old_key_id})


def _set_org_key(
    org_id: str, key_id: str, value: str, shared: bool, condition: str, values: dict[str, Any] | None = None
) -> Org | None:
    fields = {"usageKeyId": key_id, "usageKey": value, "usageKeyShared": shared, "updatedAt": clock.iso()}
    return org_from(apply_if(org_update(org_id, set=fields, condition=condition, values=values or {})))


# -- the deployment's own record: keys made by auto-provisioning, and the shared keys ------------------

# No tenant can have this id (org ids never contain "#"), so the record lives beside the tenants' items.
DEPLOYMENT_ORG = "#deployment"
TENANT_KEYS_SK = "TENANT_KEYS"


def _deployment_key() -> dict[str, Any]:
    return org_key(DEPLOYMENT_ORG, TENANT_KEYS_SK)


def _deployment_update(**kwargs: Any) -> Update:
    return Update(table=table(), key=_deployment_key(), **kwargs)


def reserve_tenant_key(limit: int) -> bool:
    """Counts one more key made by auto-provisioning, only while fewer than `limit` were made."""
    if limit <= 0:
        return False
    counted = apply_if(
        _deployment_update(
            add={"autoKeys": 1},
            condition="attribute_not_exists(#autoKeys) OR #autoKeys < :limit",
            values={"limit": limit},
        )
    )
    return counted is not None


def release_tenant_key() -> None:
    """Gives back a reserved key that was not made after all (or not kept)."""
    apply_if(_deployment_update(add={"autoKeys": -1}, condition="#autoKeys > :zero", values={"zero": 0}))


def shared_key(plan: str) -> tuple[str, str] | None:
    """The shared key of a license plan's tenants past the key limit: (key id, value), or None yet."""
    response = dynamo_client().get_item(TableName=table(), Key=_deployment_key(), ConsistentRead=True)
    item = from_item(response.get("Item")) or {}
    shared = (item.get("sharedKeys") or {}).get(plan)
    return (str(shared["id"]), str(shared["value"])) if shared else None


def store_shared_key(plan: str, key_id: str, value: str) -> tuple[str, str]:
    """Records the plan's shared key unless one was recorded first; the plan's shared key either way."""
    recorded = apply_if(
        _deployment_update(set_expressions=["#sharedKeys = if_not_exists(#sharedKeys, :empty)"], values={"empty": {}})
    )
    assert recorded is not None
    apply_if(
        _deployment_update(
            set_expressions=["#sharedKeys.#plan = :key"],
            condition="attribute_not_exists(#sharedKeys.#plan)",
            values={"key": {"id": key_id, "value": value}},
            names={"plan": plan},
        )
    )
    found = shared_key(plan)
    assert found is not None
    return found
