"""Runner heartbeats: the runner says it is alive and what it is; one DynamoDB write."""

from __future__ import annotations

from typing import Any

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import Conflict
from hangar.core.observability import metrics
from hangar.fleet.liveness import runner_status
from hangar.fleet.models.heartbeat import HeartbeatAck, HeartbeatRequest
from hangar.identity.auth import RunnerPrincipal, runner_token_refused
from hangar.identity.credentials import current_runner
from hangar.store import runners as runner_store
from hangar.store.runners import Runner


def record_heartbeat(principal: RunnerPrincipal, report: HeartbeatRequest) -> Runner:
    """Stores the report and the heartbeat time in ONE conditional UpdateItem and returns the runner.

    The write is conditional on the caller's token version (TOKEN_GUARD), so a regenerated or deleted
    runner's old token gets 401 here even while the authorizer's cached Allow lives. It also puts the
    runner in the live-runner index (liveShard) the sweeper reads, and erases the KMS-encrypted
    setup token: the runner has authenticated, so setup-info no longer needs the plaintext.

    An `offline` heartbeat (the agent stopping cleanly) takes the runner offline instead."""
    if report.status == "offline":
        return _stop_heartbeating(principal)
    now = clock.now()
    fields: dict[str, Any] = {
        "status": report.status,
        "lastHeartbeatAt": clock.iso(now),
        "lastHeartbeatEpoch": now,
        "liveShard": runner_store.live_shard(principal.runner_id),
        "updatedAt": clock.iso(now),
    }
    fields.update(report.model_dump(exclude_unset=True, exclude_none=True, exclude={"status"}))
    written, runner = runner_store.update_runner_guarded(
        principal.org_id, principal.runner_id, principal.token_version, fields, remove_fields=("setupToken",)
    )
    if not written or runner is None:
        raise runner_token_refused(runner)
    # Heartbeats per minute ÷ (60 / interval) is the dashboard's count of runners online: a gauge
    # that costs no read (counting the live index each minute would read the whole fleet).
    metrics.add_metric(name="Heartbeats", unit="Count", value=1)
    return runner


def _stop_heartbeating(principal: RunnerPrincipal) -> Runner:
    """The agent's last word before a clean stop: offline at once rather than reading online until it goes
    stale (90 s), out of the live index, and any job it still holds recovered as Mark offline does. A
    GetItem and one transaction; a regenerated or deleted runner's old token gets 401 and changes nothing."""
    # Imported here: a stop is rare, and the heartbeat's cold start stays without the recovery machinery
    # (tests/unit/test_hot_path_imports.py).
    from hangar.jobs.recovery import Leaving, retire_runner

    runner = current_runner(principal)
    retired = retire_runner(
        principal.org_id,
        principal.runner_id,
        Leaving.OFFLINE,
        "runner_stopped",
        runner=runner,
        token_version=principal.token_version,
    )
    if not retired.done or retired.runner is None:
        if retired.counts.errors:
            raise Conflict(f"Runner {principal.runner_id} kept changing; try again", code="concurrent_update")
        raise runner_token_refused(retired.runner)
    return retired.runner


def own_runner(principal: RunnerPrincipal) -> Runner:
    """The calling runner, read and not written (GET /api/runners/me). As on a heartbeat, a regenerated or
    deleted runner's old token gets 401 even while the authorizer's cached Allow lives."""
    return current_runner(principal)


def heartbeat_ack(runner: Runner) -> HeartbeatAck:
    """What the agent needs back: its effective status, when to call again and which jobs to stop."""
    return HeartbeatAck(
        _id=runner.runner_id,
        status=runner_status(runner),
        heartbeatIntervalSeconds=get_settings().heartbeat_interval_seconds,
        cancelledJobs=sorted(runner.cancelled_jobs),
    )
