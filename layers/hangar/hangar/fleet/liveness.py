"""A runner's status as users see it, from its stored item: a leaf module, so that the heartbeat (the
hottest route) reads it without importing runner management and job recovery."""

from __future__ import annotations

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.models import RunnerStatus
from hangar.store.dynamo import Item


def runner_status(runner: Item, now: float | None = None) -> RunnerStatus:
    """offline when created, marked or silent past STALE_AFTER_SECONDS; busy with jobs or when it says so."""
    stored = runner.get("status", "offline")
    last = runner.get("lastHeartbeatEpoch")
    current = clock.now() if now is None else now
    if stored == "offline" or last is None or current - float(last) > get_settings().stale_after_seconds:
        return "offline"
    if int(runner.get("currentJobs", 0)) > 0 or stored == "busy":
        return "busy"
    return "online"
