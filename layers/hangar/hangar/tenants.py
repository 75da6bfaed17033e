"""Tenant provisioning: the org item (default plan) and the tenant's API Gateway usage key, on first use.

The user authorizer calls `provision_tenant` on every request; once the tenant has its key that is one
consistent read of the org item. The first time it also creates an API Gateway key, attaches it to the
usage plan of the org's license plan and records it on the org item (`usageKeyId`, `usageKey`). The
authorizers return the key's value as `usageIdentifierKey`, so usage plans throttle per tenant.

Race-safe: the key is attached before it is recorded, and recorded only if the org has none yet, so a
recorded key is always in a usage plan and a tenant never has two (the loser detaches and deletes its own key).
"""

from __future__ import annotations

from hangar import usage_plans
from hangar.observability import logger
from hangar.store import orgs, usage_keys
from hangar.store.dynamo import Item


def provision_tenant(org_id: str) -> Item:
    """The tenant's org item, created with the default plan and given its usage key if it has none."""
    org = orgs.ensure_org(org_id)
    if org.get("usageKeyId") or not usage_plans.usage_plans_enabled():
        return org
    plan = str(org.get("plan"))
    plan_id = usage_plans.usage_plan_id(plan)
    if plan_id is None:
        # A deployment without this plan's usage plan: API Gateway answers 403 for this tenant until fixed.
        logger.error("no usage plan for license plan; tenant left without a key", extra={"plan": plan})
        return org
    try:
        key_id, value = usage_keys.create_key(
            usage_plans.tenant_key_name(org_id), f"Hangar tenant {org_id}: usage-plan key (not a credential)"
        )
    except usage_keys.ApiKeyQuotaReached:
        # 10,000 keys per account and region (docs/limits.md): new tenants fail until it is raised.
        logger.error("API Gateway API-key quota reached; tenant not provisioned", extra={"orgId": org_id})
        raise
    usage_keys.attach_key(plan_id, key_id)
    stored = usage_keys.store_org_key(org_id, key_id, value)
    if stored is None:
        stored = orgs.get_org(org_id) or org
        if stored.get("usageKeyId") == key_id:  # our own write, whose response was lost and retried
            return stored
        # Another request provisioned the tenant first: keep its key, drop ours.
        usage_keys.detach_key(plan_id, key_id)
        usage_keys.delete_key(key_id)
        return stored
    if stored.get("plan") != plan:  # the license changed while the key was made: follow it
        usage_plans.move_tenant_to_plan(stored, str(stored.get("plan")))
    return stored
