"""A runner's token after creation: regenerate it, show it once more for setup, serve the install script.

The plaintext of a new runner token is kept KMS-encrypted on the runner item (`setupToken`, encryption
context = org + runner) only until the runner first authenticates (its first heartbeat erases it);
setup-info shows it until then, and `null` with a hint to regenerate afterwards.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Conflict, NotFound, Unauthorized
from hangar.fleet import runners
from hangar.fleet.install_script import render_install_script
from hangar.fleet.models.enrollment import RegeneratedToken, SetupInfo
from hangar.identity import tokens
from hangar.identity.auth import RunnerPrincipal
from hangar.identity.credentials import current_runner
from hangar.identity.tokens import TokenType
from hangar.store import kms, orgs
from hangar.store import runners as runner_store
from hangar.store import tokens as token_store
from hangar.store.transactions import TransactionCancelled, transact
from hangar.tenancy import limits
from hangar.tenancy.ratelimit import counted_request


def public_api_url(request_context: Mapping[str, Any]) -> str:
    """Where runners reach this API: PUBLIC_API_URL when set (custom domains, local/), else the
    execute-api URL the request came in on (https://<domainName>/<stage>)."""
    configured = get_settings().public_api_url
    if configured:
        return configured.rstrip("/")
    domain = str(request_context.get("domainName") or "localhost")
    stage = str(request_context.get("stage") or "")
    return f"https://{domain}/{stage}".rstrip("/")


def regenerate_token(org_id: str, runner_id: str) -> RegeneratedToken:
    """A new runner token; the old one stops working at once (5 per hour per runner).

    One transaction: the runner points at the new token (tokenVersion + 1, so every runner-route write
    made with the old token's cached authorization fails), the old token item is deleted (the
    authorizer refuses it from then on), the new one is stored with the same labels and usage key, and
    the regeneration is counted against the runner's hourly budget — so a request that ends in 404 or
    409 uses none of it."""
    runner = runners.get_runner(org_id, runner_id)
    budget = counted_request(
        org_id, limits.regenerate_token_limit_name(runner_id), limits.REGENERATIONS_PER_HOUR, limits.HOUR
    )
    old_token_id = str(runner.token_id)
    seen_version = runner.token_version
    old_token = token_store.get_runner_token(old_token_id)
    usage_key = old_token.usage_key if old_token else orgs.usage_key(org_id)
    token = tokens.mint(TokenType.RUNNER)
    setup_token = kms.encrypt(token.raw, runners.setup_token_context(org_id, runner_id))
    operations = {
        "runner": runner_store.rotate_token_op(
            org_id, runner_id, seen_version, token.token_id, setup_token, clock.iso()
        ),
        "oldToken": token_store.delete_token_op(old_token_id),
        "newToken": token_store.put_token_op(
            runners.runner_token_item(org_id, runner_id, token, seen_version + 1, list(runner.labels), usage_key)
        ),
        "budget": budget.operation,
        "audit": audit.operation("runner.regenerate_token", org_id, "runner", runner_id),
    }
    try:
        transact(operations)
    except TransactionCancelled as cancelled:
        if cancelled["runner"].missing:
            raise NotFound(f"Runner {runner_id} not found") from None
        if cancelled["budget"].condition_failed:
            raise budget.refusal from None
        if not cancelled["runner"].ok:
            raise Conflict(
                "The runner's token was changed by another request at the same time; try again",
                code="token_changed",
            ) from None
        raise
    return RegeneratedToken(_id=runner_id, token=token.raw, tokenPrefix=token.token_id)


REGENERATE_HINT = (
    "The runner has already authenticated, so its token is no longer kept. Regenerate it "
    "(POST /api/runners/{runner_id}/regenerate-token) to get a new one, then export it as "
    "HANGAR_RUNNER_TOKEN and run the install command."
)


def install_command(api_url: str, runner_id: str, token: str | None) -> str:
    url = f"{api_url}/api/runners/{runner_id}/setup?token="
    if token is not None:
        return f"curl -fsSL {shlex.quote(url + token)} | sh"
    # Double quotes: the shell expands the variable the user exported.
    return f'curl -fsSL "{url}$HANGAR_RUNNER_TOKEN" | sh'


def setup_info(org_id: str, runner_id: str, api_url: str) -> SetupInfo:
    """What the CLI needs to set a runner up; the token only until the runner first authenticates."""
    runner = runners.get_runner(org_id, runner_id)
    ciphertext = runner.setup_token
    token = kms.decrypt(ciphertext, runners.setup_token_context(org_id, runner_id)) if ciphertext else None
    return SetupInfo(
        runnerId=runner_id,
        apiUrl=api_url,
        tokenPrefix=str(runner.token_id),
        token=token,
        installCommand=install_command(api_url, runner_id, token),
        hint=None if token is not None else REGENERATE_HINT.format(runner_id=runner_id),
    )


def install_script(principal: RunnerPrincipal, path_runner_id: str, raw_token: str | None, api_url: str) -> str:
    """The install script for the runner whose token is in the query (the authorizer checked it).

    Another runner's id in the path is a 404. The runner is read to fill in its name and labels, and
    to refuse (401) a token that was regenerated since: the authorizer's answer may be cached."""
    if path_runner_id != principal.runner_id:
        raise NotFound(f"Runner {path_runner_id} not found")
    parsed = tokens.parse(raw_token, TokenType.RUNNER)
    if parsed is None or parsed.token_id != principal.token_id:
        raise Unauthorized("Invalid runner token")
    runner = current_runner(principal)
    return render_install_script(
        api_url=api_url,
        runner_id=principal.runner_id,
        token=parsed.raw,
        token_prefix=parsed.token_id,
        name=runner.name,
        labels=list(runner.labels),
        configured_concurrency=runner.configured_concurrency,
        agent_package=get_settings().agent_package_spec,
    )
