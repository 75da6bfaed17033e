"""Public authorizer: for routes that carry their credential in the body (POST /v1/runners/register).

It authenticates nothing; it exists so that every method has an API key (usage plans count and
throttle unauthenticated traffic under one shared key) and so the register route has one shape.
"""

from typing import Any

from hangar.api.authorizer import Grant, lambda_authorizer
from hangar.tenancy.usage_plans import public_usage_key


def authenticate(event: dict[str, Any]) -> Grant:
    return "anonymous", {"principalType": "public"}, public_usage_key()


handler = lambda_authorizer(authenticate)
