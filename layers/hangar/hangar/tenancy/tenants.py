"""Tenant provisioning: the org item (default plan) and the API Gateway key its requests count under.

The user authorizer calls `provision_tenant` on every request; once the tenant has its key that is one
consistent read of the org item. The first time, the tenant gets a key of its own in the usage plan of its
license plan (`usageKeyId`, `usageKey` on the org item); the authorizers return the key's value as
`usageIdentifierKey`, so usage plans throttle per tenant.

Keys are bounded (API Gateway allows 10,000 per account and region, shared by every stack in it): at most
`TENANT_KEY_LIMIT` keys are made by auto-provisioning. Past that — an identity provider with open sign-up
makes every new `sub` a tenant — new tenants share their plan's key (`usageKeyShared`), throttled
together like unauthenticated traffic, and an error is logged so an operator can act. A tenant gets its
own key whenever an operator sets its license (`follow_license`), whatever the limit: licensed tenants
are the ones an operator vouches for.

Race-safe: a key is attached to its plan before it is recorded, and recorded only if the org has none yet,
so a recorded key is always in a usage plan and a tenant never has two (the loser detaches and deletes
its own key, and gives back its place under the limit).
"""

from __future__ import annotations

from hangar.core.config import get_settings
from hangar.core.observability import logger, metrics
from hangar.store import orgs, usage_keys
from hangar.store import runners as runner_store
from hangar.store import tokens as token_store
from hangar.store.orgs import Org
from hangar.tenancy import usage_plans

# Runners read per page when a tenant's runner tokens move to its own usage key.
RUNNER_PAGE_SIZE = 200


def _own_key(org_id: str, plan_id: str) -> tuple[str, str]:
    """A new key for the tenant, attached to the usage plan (raises ApiKeyQuotaReached)."""
    key_id, value = usage_keys.create_key(
        usage_plans.tenant_key_name(org_id), f"Hangar tenant {org_id}: usage-plan key (not a credential)"
    )
    usage_keys.attach_key(plan_id, key_id)
    return key_id, value


def _drop_key(plan_id: str, key_id: str) -> None:
    usage_keys.detach_key(plan_id, key_id)
    usage_keys.delete_key(key_id)


def shared_key(plan: str, plan_id: str) -> tuple[str, str]:
    """The key the plan's tenants share past the limit, made on first need (race-safe)."""
    found = usage_keys.shared_key(plan)
    if found is not None:
        return found
    key_id, value = usage_keys.create_key(
        usage_plans.shared_key_name(plan), f"Hangar: the {plan} plan's shared usage-plan key (not a credential)"
    )
    usage_keys.attach_key(plan_id, key_id)
    recorded = usage_keys.store_shared_key(plan, key_id, value)
    if recorded[0] != key_id:  # another request recorded one first
        _drop_key(plan_id, key_id)
    return recorded


def _record(org_id: str, key_id: str, value: str, shared: bool) -> tuple[Org, bool]:
    """Records the key on the org; (the org as it is now, whether this key is the one recorded)."""
    stored = usage_keys.store_org_key(org_id, key_id, value, shared=shared)
    if stored is not None:
        return stored, True
    current = orgs.org_or_default(org_id)
    # None also when this write's own first attempt landed and its response was lost (then it is ours).
    return current, current.usage_key_id == key_id


def provision_tenant(org_id: str) -> Org:
    """The tenant's org item, created with the default plan and given its usage key if it has none."""
    org = orgs.ensure_org(org_id)
    if org.usage_key_id or not usage_plans.usage_plans_enabled():
        return org
    plan = str(org.plan)
    plan_id = usage_plans.usage_plan_id(plan)
    if plan_id is None:
        # A deployment without this plan's usage plan: API Gateway answers 403 for this tenant until fixed.
        logger.error("no usage plan for license plan; tenant left without a key", extra={"plan": plan})
        return org
    stored: Org | None = None
    if usage_keys.reserve_tenant_key(get_settings().tenant_key_limit):
        try:
            key_id, value = _own_key(org_id, plan_id)
        except usage_keys.ApiKeyQuotaReached:
            usage_keys.release_tenant_key()
            logger.error("API Gateway API-key quota reached; new tenant shares its plan's key", extra={"orgId": org_id})
        else:
            stored, ours = _record(org_id, key_id, value, shared=False)
            if not ours:  # another request provisioned the tenant first: keep its key, drop ours
                _drop_key(plan_id, key_id)
                usage_keys.release_tenant_key()
    else:
        logger.error("tenant key limit reached; new tenant shares its plan's key", extra={"orgId": org_id})
        metrics.add_metric(name="TenantsOnSharedKeys", unit="Count", value=1)
    if stored is None:
        key_id, value = shared_key(plan, plan_id)
        stored, _ = _record(org_id, key_id, value, shared=True)
    if stored.plan != plan:  # the license changed while the key was made: follow it
        return follow_license(stored)
    return stored


def follow_license(org: Org) -> Org:
    """After an operator's license write: the tenant's key in the usage plan of its (new) plan. A tenant
    on a shared key gets its own first (its runner tokens follow), so the shared key never moves."""
    plan = str(org.plan)
    if org.usage_key_shared and org.usage_key_id and usage_plans.usage_plans_enabled():
        plan_id = usage_plans.usage_plan_id(plan)
        if plan_id is None:
            logger.error("no usage plan for license plan", extra={"plan": plan, "orgId": org.org_id})
            return org
        try:
            key_id, value = _own_key(org.org_id, plan_id)
        except usage_keys.ApiKeyQuotaReached:
            logger.error("API Gateway API-key quota reached; licensed tenant keeps a shared key", extra={"plan": plan})
            return org
        replaced = usage_keys.replace_org_key(org.org_id, org.usage_key_id, key_id, value)
        if replaced is None:  # changed meanwhile (a concurrent license write gave it a key first)
            _drop_key(plan_id, key_id)
            return orgs.get_org(org.org_id) or org
        # Its runners' tokens (bounded by the plan's runner limit: a page or two).
        for page in runner_store.runner_pages(org.org_id, RUNNER_PAGE_SIZE):
            for runner in page:
                token_store.set_token_usage_key(str(runner.token_id), value)
        return replaced
    usage_plans.move_tenant_to_plan(org, plan)
    return org
