"""Lambda REQUEST authorizers: one shape for all of them (Allow + context + usage key, or Deny + reason).

A refused credential is answered with an explicit Deny whose context names the reason (`errorCode`,
`errorMessage`), not with API Gateway's other 401 idiom (raising "Unauthorized"): that one always
becomes the fixed UNAUTHORIZED gateway response, so a client could not tell `jwks_unavailable`
(retry) from a bad token (sign in again). API Gateway answers a Deny with its ACCESS_DENIED gateway
response, whose template (template.yaml) is a 401 rendering `$context.authorizer.errorCode` and
`errorMessage`; gateway response templates do simple substitution only (no VTL, no escaping), so
the message is JSON-escaped here. `sam local start-api` understands a policy too (it answers a raised
error with 502), and a refusal is then not a Lambda error in the metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hangar.core.config import get_settings
from hangar.core.errors import Unauthorized
from hangar.core.observability import logger

# What an authorizer's authenticate step returns: principal id, context for handlers, usage-plan key.
Grant = tuple[str, dict[str, Any], str | None]


def api_wide_resource(method_arn: str) -> str:
    """arn:...:apiId/stage/* — a cached Allow must cover every route, not only the one first called."""
    prefix, _, path = method_arn.partition(":execute-api:")
    region_account_api = path.split("/", 2)
    return (
        f"{prefix}:execute-api:{region_account_api[0]}/{region_account_api[1]}/*"
        if len(region_account_api) >= 2
        else method_arn
    )


REFUSED_PRINCIPAL = "refused"
"""principalId of a Deny (API Gateway requires one; nobody was authenticated)."""


def _policy_document(effect: str, method_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": api_wide_resource(method_arn)}],
    }


def allow(principal_id: str, method_arn: str, context: dict[str, Any], usage_key: str | None) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": _policy_document("Allow", method_arn),
        "context": context,
    }
    if usage_key:
        policy["usageIdentifierKey"] = usage_key
    return policy


def deny(method_arn: str, refusal: Unauthorized) -> dict[str, Any]:
    """A refusal, API-wide like an Allow (a cached Deny covers every route the credential tries), whose
    context the ACCESS_DENIED gateway response renders: the 401 body's `code` and `message`."""
    return {
        "principalId": REFUSED_PRINCIPAL,
        "policyDocument": _policy_document("Deny", method_arn),
        "context": {"errorCode": refusal.code, "errorMessage": json.dumps(refusal.message)[1:-1]},
    }


def lambda_authorizer(
    authenticate: Callable[[dict[str, Any]], Grant],
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """An authorizer entry point: Allow with context, or Deny with the reason (a 401 through ACCESS_DENIED)."""
    get_settings()  # at cold start: an invalid setting fails the init phase, naming its variable

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            principal_id, auth_context, usage_key = authenticate(event)
        except Unauthorized as refusal:
            # The reason only; never the credential.
            logger.info(
                "credential refused", extra={"reason": refusal.message, "code": refusal.code, "path": event.get("path")}
            )
            return deny(event.get("methodArn", ""), refusal)
        return allow(principal_id, event.get("methodArn", ""), auth_context, usage_key)

    entry: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = handler  # decorators erase the type
    return entry
