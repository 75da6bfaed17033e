"""What a runner reports about itself (heartbeat and registration) and the heartbeat's answer."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from hangar.core.models import Concurrency, StrictModel, View

MAX_REPORTED_OBJECT_BYTES = 4096
MAX_REPORTED_OBJECT_DEPTH = 4
MAX_KEY_LENGTH = 128
# DynamoDB numbers hold 38 significant digits, from 1E-130 to 9.99E+125 in magnitude; stay well inside.
MAX_ABS_NUMBER = 1e38
MIN_ABS_NUMBER = 1e-38

# Agent version and container engine: short printable strings ("1.2.0", "docker").
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")]


def _storable(value: float) -> float:
    """A float DynamoDB can store: 1e-308 would underflow there, so it is refused here."""
    if 0 < abs(value) < MIN_ABS_NUMBER:
        raise ValueError(f"numbers must be 0 or at least {MIN_ABS_NUMBER} in magnitude")
    return value


# A resource figure (CPU count, bytes of memory or disk); null when the agent cannot tell. A JSON number:
# strict, so `false` or "4" is refused rather than read as 0 or 4.
Measure = Annotated[float, Field(strict=True, ge=0, le=1e18, allow_inf_nan=False), AfterValidator(_storable)]


def _check_value(value: Any, depth: int) -> None:
    """Raises ValueError for what DynamoDB could not store or a user should not be shown."""
    if isinstance(value, dict | list) and depth > MAX_REPORTED_OBJECT_DEPTH:
        raise ValueError(f"must be nested at most {MAX_REPORTED_OBJECT_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
                raise ValueError(f"keys must be 1 to {MAX_KEY_LENGTH} characters")
            _check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
            raise ValueError("numbers must be finite and at most 1e38")
        _storable(value)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ABS_NUMBER:
        raise ValueError("numbers must be at most 1e38")


def _small_object(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form runner metadata is stored on the runner item and shown to users: keep it small."""
    _check_value(value, 1)
    if len(json.dumps(value, separators=(",", ":"))) > MAX_REPORTED_OBJECT_BYTES:
        raise ValueError(f"must be at most {MAX_REPORTED_OBJECT_BYTES} bytes of JSON")
    return value


# capabilities / providerState (the `/v1` runner fields): small JSON objects the runner describes itself with.
ReportedObject = Annotated[dict[str, Any], AfterValidator(_small_object)]


class SystemInfo(StrictModel):
    """System metrics: CPU count, memory and free disk in bytes."""

    cpu: Measure | None = None
    memory: Measure | None = None
    disk: Measure | None = None


class HeartbeatRequest(StrictModel):
    """POST /api/runners/heartbeat: `status` is required, the rest is reported when known. `offline` is the
    agent's last heartbeat when it stops cleanly (the runner goes offline at once, as Mark offline does)."""

    status: Literal["online", "busy", "offline"]
    version: ShortText | None = None
    systemInfo: SystemInfo | None = None
    containerEngine: ShortText | None = None
    configuredConcurrency: Concurrency | None = None
    capabilities: ReportedObject | None = None
    providerState: ReportedObject | None = None


class HeartbeatAck(View):
    """The heartbeat's answer: the runner's effective status, when to call again, jobs to stop."""

    id: str = Field(alias="_id")
    status: Literal["offline", "online", "busy"]
    heartbeatIntervalSeconds: int
    cancelledJobs: list[str]
