"""Runner management: create, read, update, delete, mark offline; and how a runner's status reads."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.errors import Conflict, Forbidden, NotFound
from hangar.core.models import unique
from hangar.core.observability import logger
from hangar.fleet.liveness import runner_status
from hangar.fleet.models.runners import ApiCreatedRunner, ApiRunner, UpdateRunnerRequest, V1Runner
from hangar.identity import tokens
from hangar.identity.credentials import hash_token
from hangar.identity.tokens import TokenType
from hangar.jobs.recovery import Leaving, retire_runner
from hangar.store import kms, orgs
from hangar.store import runners as runner_store
from hangar.store import tokens as token_store
from hangar.store.orgs import Org
from hangar.store.runners import Runner
from hangar.store.tokens import RunnerToken
from hangar.store.transactions import TransactionCancelled, transact

# list_all_runners: pages of this many runners, and at most this many in all (50 pages).
FLEET_PAGE_SIZE = 200
MAX_FLEET_READ = 10_000


def new_runner_id() -> str:
    return "rnr_" + secrets.token_hex(8)


def _shown(runner: Runner) -> dict[str, Any]:
    """What both dialects show of a runner under the same names."""
    return {
        "name": runner.name,
        "status": runner_status(runner),
        "labels": list(runner.labels),
        "version": runner.version,
        "jobsCompleted": runner.jobs_completed,
        "configuredConcurrency": runner.configured_concurrency,
        "currentJobs": runner.current_jobs,
        "tokenPrefix": runner.token_id,
    }


def api_view(runner: Runner) -> ApiRunner:
    return ApiRunner(
        _id=runner.runner_id,
        lastHeartbeat=runner.last_heartbeat_at,
        systemInfo=runner.system_info,
        createdAt=runner.created_at,
        updatedAt=runner.updated_at,
        **_shown(runner),
    )


def created_view(runner: Runner, token: str) -> ApiCreatedRunner:
    """POST /api/runners: the new runner with its token, shown this once."""
    return ApiCreatedRunner(
        _id=runner.runner_id,
        name=runner.name,
        token=token,
        status="offline",
        labels=list(runner.labels),
        tokenPrefix=str(runner.token_id),
    )


def v1_view(runner: Runner) -> V1Runner:
    return V1Runner(
        id=runner.runner_id,
        containerEngine=runner.container_engine,
        providerState=runner.provider_state,
        capabilities=runner.capabilities,
        lastHeartbeatAt=runner.last_heartbeat_at,
        **_shown(runner),
    )


def setup_token_context(org_id: str, runner_id: str) -> dict[str, str]:
    """KMS encryption context: a ciphertext only decrypts for the runner it was made for."""
    return {"orgId": org_id, "runnerId": runner_id}


def runner_token_item(
    org_id: str, runner_id: str, token: tokens.ParsedToken, version: int, labels: list[str], usage_key: str | None
) -> RunnerToken:
    return RunnerToken(
        token_id=token.token_id,
        kind="runner",
        hash=hash_token(token.raw),
        org_id=org_id,
        runner_id=runner_id,
        token_version=version,
        labels=tuple(labels),
        usage_key=usage_key,
        created_at=clock.iso(),
    )


def raise_for_org_refusal(org: Org | None) -> None:
    """Why the org's condition refused a new runner: inactive license or the plan's runner limit."""
    if org is not None and org.license_state != "active":
        raise Forbidden(f"The license is {org.license_state}", code="license_inactive")
    raise Forbidden("The plan's runner limit is reached", code="runner_limit_reached")


@dataclass(frozen=True)
class NewRunner:
    """A runner about to be created: its item, its token (plaintext, for the caller to show once) and the
    named TransactWriteItems operations that create it: reserve the org's slot, put the runner and its token."""

    runner: Runner
    token: str
    operations: dict[str, dict[str, Any]]


def prepare_runner(
    org_id: str,
    name: str,
    labels: list[str],
    configured_concurrency: int = 1,
    *,
    usage_key: str | None = None,
    runner_id: str | None = None,
    reported: dict[str, Any] | None = None,
) -> NewRunner:
    """`reported`: what an enrolling runner said of itself (Runner fields: version, capabilities, ...)."""
    # Builds a new offline runner and the operations that create it (nothing is written yet).
    runner_id = runner_id or new_runner_id()
    token = tokens.mint(TokenType.RUNNER)
    labels = unique(labels)
    now = clock.iso()
    runner = Runner(
        org_id=org_id,
        runner_id=runner_id,
        name=name,
        labels=tuple(labels),
        status="offline",
        configured_concurrency=configured_concurrency,
        current_jobs=0,
        jobs_completed=0,
        token_id=token.token_id,
        token_version=1,
        created_at=now,
        updated_at=now,
        setup_token=kms.encrypt(token.raw, setup_token_context(org_id, runner_id)),
        **(reported or {}),
    )
    operations = {
        "org": orgs.reserve_runner_op(org_id),
        "runner": runner_store.put_runner_op(runner),
        "token": token_store.put_token_op(runner_token_item(org_id, runner_id, token, 1, labels, usage_key)),
    }
    return NewRunner(runner=runner, token=token.raw, operations=operations)


def commit_runner(new: NewRunner, org: Org | None, preceding: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Runs `preceding` and the new runner's operations in ONE transaction (concurrent transactions are
    retried by `transact`, so that the conditions decide).

    When the org's condition refuses the runner, raises 403 runner_limit_reached or license_inactive.
    When one of the `preceding` operations failed, TransactionCancelled is re-raised for the caller, who
    knows what its own operations meant."""
    try:
        transact({**(preceding or {}), **new.operations})
    except TransactionCancelled as cancelled:
        if any(not cancelled[name].ok for name in preceding or {}):
            raise
        if cancelled["org"].condition_failed:
            raise_for_org_refusal(orgs.org_from(cancelled["org"].item) or org)
        raise


def create_runner(
    org_id: str,
    name: str,
    labels: list[str],
    configured_concurrency: int = 1,
) -> tuple[Runner, str]:
    """A new offline runner and its runner token (plaintext returned once, stored only as a hash)."""
    org = orgs.ensure_org(org_id)
    new = prepare_runner(org_id, name, labels, configured_concurrency, usage_key=org.usage_key)
    commit_runner(
        new, org, preceding={"audit": audit.operation("runner.create", org_id, "runner", new.runner.runner_id)}
    )
    return new.runner, new.token


def get_runner(org_id: str, runner_id: str) -> Runner:
    runner = runner_store.get_runner(org_id, runner_id)
    if runner is None:
        raise NotFound(f"Runner {runner_id} not found")
    return runner


def list_runners(org_id: str, limit: int, cursor: str | None) -> tuple[list[Runner], str | None]:
    """A page of the tenant's runners. The handlers' way to the store, which handlers never import
    (docs/conventions.md); domain code pages the store itself."""
    return runner_store.list_runners(org_id, limit, cursor)


def list_all_runners(org_id: str, max_runners: int = MAX_FLEET_READ) -> list[Runner]:
    """Every runner of the tenant (bounded by the plan's runner limit, so at most a few pages), and never
    more than `max_runners`: an operator's license override can lift the runner limit, and one request
    must not hold an unbounded fleet in memory (the readiness of a larger fleet is that of its first
    `max_runners` runners by id, logged)."""
    fleet: list[Runner] = []
    for page in runner_store.runner_pages(org_id, min(FLEET_PAGE_SIZE, max_runners)):
        fleet.extend(page)
        if len(fleet) >= max_runners:
            logger.warning("fleet read stopped at its bound", extra={"orgId": org_id, "runnersRead": len(fleet)})
            return fleet[:max_runners]
    return fleet


# Optimistic retries of a runner update whose token was regenerated between its read and its write.
UPDATE_ATTEMPTS = 5


def update_runner(org_id: str, runner_id: str, changes: UpdateRunnerRequest) -> Runner:
    """Applies the changes, and new labels to the runner's token item too (the runner authorizer routes by
    them), in one transaction with the audit event: a GetItem and a TransactWriteItems."""
    fields: dict[str, Any] = {
        name: value for name, value in changes.model_dump(exclude_unset=True).items() if value is not None
    }
    if "labels" in fields:
        fields["labels"] = unique(fields["labels"])
    for _ in range(UPDATE_ATTEMPTS):
        runner = get_runner(org_id, runner_id)
        fields["updatedAt"] = clock.iso()
        token_id = str(runner.token_id) if "labels" in fields else None
        operations = {"runner": runner_store.update_runner_op(org_id, runner_id, fields, seen_token_id=token_id)}
        if token_id is not None:
            operations["token"] = token_store.set_token_labels_op(token_id, fields["labels"])
        operations["audit"] = audit.operation("runner.update", org_id, "runner", runner_id)
        try:
            transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled["runner"].missing:
                raise NotFound(f"Runner {runner_id} not found") from None
            if cancelled["runner"].condition_failed:
                continue  # its token was regenerated meanwhile: the labels go to the new one
            raise
        return Runner.from_item({**runner.to_item(), **fields})
    raise Conflict(f"Runner {runner_id} kept changing; try again", code="concurrent_update")


def delete_runner(org_id: str, runner_id: str) -> Runner:
    """Deletes the runner and revokes its token at once; its slot in the plan frees up, and every job it
    held goes back to the queue (or fails runner_lost after maxAttempts) in the same transaction, so no
    job is ever left held by a runner that no longer exists."""
    runner = get_runner(org_id, runner_id)
    audited = {"audit": audit.operation("runner.delete", org_id, "runner", runner_id)}
    retired = retire_runner(org_id, runner_id, Leaving.DELETE, "runner_deleted", runner=runner, also=audited)
    if retired.counts.errors:
        # It kept changing under the deletion (claims, reports): nothing was deleted.
        raise Conflict(f"Runner {runner_id} kept changing; try again", code="concurrent_update")
    if not retired.done:
        raise NotFound(f"Runner {runner_id} not found")  # deleted by a concurrent request
    return runner


def mark_offline(org_id: str, runner_id: str) -> Runner:
    """Marks the runner offline (out of the live index, so it claims nothing until it heartbeats again)
    together with the recovery of the jobs it held, as the sweeper does for a stale runner."""
    audited = {"audit": audit.operation("runner.mark_offline", org_id, "runner", runner_id)}
    retired = retire_runner(org_id, runner_id, Leaving.OFFLINE, "runner_marked_offline", also=audited)
    if not retired.done or retired.runner is None:
        if retired.counts.errors:
            raise Conflict(f"Runner {runner_id} kept changing; try again", code="concurrent_update")
        raise NotFound(f"Runner {runner_id} not found")
    return retired.runner
