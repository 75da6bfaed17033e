"""Runner authorizer: `X-Runner-Token` on agent routes, `?token=` on the install script. One read."""

from typing import Any

from hangar.api.authorizer import Grant, lambda_authorizer
from hangar.identity.credentials import authenticate_runner


def _token(event: dict[str, Any]) -> str | None:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "x-runner-token":
            return str(value)
    return (event.get("queryStringParameters") or {}).get("token")


def authenticate(event: dict[str, Any]) -> Grant:
    principal, usage_key = authenticate_runner(_token(event))
    return principal.runner_id, principal.to_context(), usage_key


handler = lambda_authorizer(authenticate)
