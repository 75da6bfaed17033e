"""A runner's status as users see it, from its stored item: a leaf module, so that the heartbeat (the
hottest route) reads it without importing runner management and job recovery."""

from __future__ import annotations

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.models import RunnerStatus
from hangar.store.runners import Runner


def runner_status(runner: Runner, now: float | None = None) -> RunnerStatus:
    """offline when created, marked or silent past STALE_AFTER_SECONDS; busy with jobs or when it says so."""
    last = runner.last_heartbeat_epoch
    current = clock.now() if now is None else now
    if runner.status == "offline" or last is None or current - float(last) > get_settings().stale_after_seconds:
        return "offline"
    if runner.current_jobs > 0 or runner.status == "busy":
        return "busy"
    return "online"
