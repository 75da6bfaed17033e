"""User authorizer: Bearer JWT, Bearer hgk_ API key or X-API-Key; provisions the tenant on first use."""

from typing import Any

from hangar.api.authorizer import Grant, lambda_authorizer
from hangar.identity.auth import jwt_configuration_problem
from hangar.identity.credentials import authenticate_user
from hangar.tenancy.tenants import provision_tenant

# At cold start: a deployment whose JWT settings are unsafe logs one configuration error and refuses
# every JWT (401), rather than failing open or with a 500.
jwt_configuration_problem()


def authenticate(event: dict[str, Any]) -> Grant:
    principal = authenticate_user(event.get("headers"))
    org = provision_tenant(principal.org_id)
    return principal.subject or principal.org_id, principal.to_context(), org.usage_key


handler = lambda_authorizer(authenticate)
