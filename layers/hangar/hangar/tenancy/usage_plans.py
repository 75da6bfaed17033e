"""API Gateway usage-plan keys: one per tenant, attached to its license plan's usage plan
(docs/limits.md).

Usage plans are found by name (`<USAGE_PLAN_NAME_PREFIX><plan>`, e.g. `hangar-prod-team`) unless
USAGE_PLAN_IDS gives their ids; with neither, usage plans are off and tenants get no key.
"""

from __future__ import annotations

from functools import lru_cache

from hangar.core.config import get_settings
from hangar.core.observability import logger
from hangar.store import usage_keys
from hangar.store.orgs import Org

PUBLIC_PLAN = "public"
"""The usage plan of unauthenticated routes (one shared key, created by the template)."""


def usage_plans_enabled() -> bool:
    settings = get_settings()
    return bool(settings.usage_plan_ids or settings.usage_plan_name_prefix)


def usage_plan_id(plan: str) -> str | None:
    """The id of the API Gateway usage plan of a license plan; None when there is none."""
    settings = get_settings()
    if plan in settings.usage_plan_ids:
        return settings.usage_plan_ids[plan]
    if not settings.usage_plan_name_prefix:
        return None
    name = f"{settings.usage_plan_name_prefix}{plan}"
    found = usage_keys.usage_plan_ids_by_name().get(name)
    if found is None:  # a plan created since the names were read (a deployment while warm): look again
        usage_keys.forget_usage_plans()
        found = usage_keys.usage_plan_ids_by_name().get(name)
    return found


def tenant_key_name(org_id: str) -> str:
    return f"{get_settings().usage_plan_name_prefix}tenant-{org_id}"


def shared_key_name(plan: str) -> str:
    return f"{get_settings().usage_plan_name_prefix}shared-{plan}"


def public_usage_key() -> str | None:
    """The shared key unauthenticated routes are counted under (None when there is no public key)."""
    key_id = get_settings().public_usage_key_id
    return _key_value(key_id) if key_id else None


@lru_cache(maxsize=4)
def _key_value(key_id: str) -> str:
    """A key's value, read once per container (keys never change value)."""
    return usage_keys.key_value(key_id)


def move_tenant_to_plan(org: Org, plan: str) -> None:
    """Attach the tenant's API Gateway key to the usage plan of `plan` (and detach it from the others).

    Called after every license write (PUT /v1/orgs/{orgId}/license), with the org item as stored. A
    tenant without a key yet gets one on its next authenticated request, in the plan stored by then.
    API Gateway refuses a key in two usage plans of the same stage, so the key leaves its old plan
    first: for a moment (milliseconds) the tenant's requests answer 403.
    """
    key_id = org.usage_key_id
    if not key_id or not usage_plans_enabled() or org.usage_key_shared:
        return  # a shared key stays in its plan: its tenant gets its own key first (hangar.tenancy.tenants)
    target = usage_plan_id(plan)
    if target is None:
        logger.error("no usage plan for license plan", extra={"plan": plan, "orgId": org.org_id})
        return
    current = usage_keys.usage_plans_of_key(key_id)
    for plan_id in current:
        if plan_id != target:
            usage_keys.detach_key(plan_id, key_id)
    if target not in current:
        usage_keys.attach_key(target, key_id)
