"""Runner heartbeats: the runner says it is alive and what it is; one DynamoDB write."""

from __future__ import annotations

from typing import Any

from hangar.core import clock
from hangar.core.config import get_settings
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
    setup token: the runner has authenticated, so setup-info no longer needs the plaintext."""
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
