"""API Gateway usage-plan keys: one per tenant, attached to its license plan's usage plan (DESIGN §3)."""

from __future__ import annotations


def public_usage_key() -> str | None:
    """The shared key unauthenticated routes are counted under (None until usage plans are provisioned)."""
    return None
