"""Per-tenant and per-runner limits that are counted in DynamoDB (`hangar.tenancy.ratelimit.enforce_rate_limit`).

The numbers live here, once; docs/limits.md shows them. Limits that API Gateway or AWS WAF enforce
(usage-plan rates and quotas, runner routes 120/min per runner, register per source IP) are not
here: template.yaml holds them, and `local/` reads them from there.

Each limit is a fixed window aligned to the epoch, counted with one conditional UpdateItem on the
Orgs table (see `hangar.tenancy.ratelimit`); call it after the checks that can refuse the request for other
reasons and before any write, so a refused request changes nothing.
"""

from __future__ import annotations

HOUR = 3600

# Seed 000: POST /api/runners/{runnerId}/regenerate-token, "Rate limit: Strict (5/hour)", per runner.
REGENERATIONS_PER_HOUR = 5

# POST /v1/runners/enrollment-tokens, per tenant: enough to enroll an enterprise tenant's whole fleet
# (100 runners) within an hour with room for retries, far below what a loop gone wrong produces.
ENROLLMENT_TOKENS_PER_HOUR = 120

# POST /v1/api-keys, per tenant: keys are created by people and CI set-ups, a handful at a time.
API_KEYS_PER_HOUR = 20


def regenerate_token_limit_name(runner_id: str) -> str:
    """The counter of one runner's regenerations (each runner has its own budget)."""
    return f"regenerate-token:{runner_id}"


ENROLLMENT_TOKENS_LIMIT_NAME = "create-enrollment-token"
API_KEYS_LIMIT_NAME = "create-api-key"
