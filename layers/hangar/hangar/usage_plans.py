"""API Gateway usage-plan keys: one per tenant, attached to its license plan's usage plan (DESIGN §3)."""

from __future__ import annotations

from typing import Any


def public_usage_key() -> str | None:
    """The shared key unauthenticated routes are counted under (None until usage plans are provisioned)."""
    return None


def move_tenant_to_plan(org: dict[str, Any], plan: str) -> None:
    """Attach the tenant's API Gateway key to the usage plan of `plan` (and detach it from the others).

    Called after every license write (PUT /v1/orgs/{orgId}/license), with the org item as stored.
    A no-op until issue 5 fills it in with the usage-plan key provisioning.
    """
    return None
