"""The template's schedules: EventBridge scheduled events, on a timer or on demand."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from hangar.core import clock

from local.template import ACCOUNT_ID, REGION, ScheduleSpec

_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of `rate(N unit)`; None for cron() and anything else not a rate."""
    match = _RATE_RE.match(expression.strip())
    if not match:
        return None
    unit = match.group(2).lower().rstrip("s")
    return int(match.group(1)) * _UNIT_SECONDS[unit]


def scheduled_event(schedule: ScheduleSpec) -> dict[str, Any]:
    """The event EventBridge sends for `schedule`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": clock.iso()[:19] + "Z",
        "region": REGION,
        "resources": [schedule.rule_arn],
        "detail": {},
    }


class Scheduler:
    """Runs each enabled rate schedule on its own daemon thread (wall-clock intervals)."""

    def __init__(self, schedules: Iterable[ScheduleSpec], run: Callable[[ScheduleSpec], Any]) -> None:
        self.schedules = [s for s in schedules if s.enabled]
        self._run = run
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> list[str]:
        """Start the timers; returns a line per schedule for the banner."""
        lines = []
        for schedule in self.schedules:
            interval = rate_seconds(schedule.expression)
            if interval is None:
                lines.append(f"{schedule.function_id}: {schedule.expression} is not run on a timer locally")
                continue
            thread = threading.Thread(
                target=self._loop,
                args=(schedule, interval),
                name=f"schedule-{schedule.function_id}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            lines.append(f"{schedule.function_id}: every {interval} s")
        return lines

    def _loop(self, schedule: ScheduleSpec, interval: int) -> None:
        while not self._stop.wait(interval):
            try:
                self._run(schedule)
            except Exception:  # noqa: S112 - the run reported it (local.server); the next tick tries again
                continue

    def stop(self) -> None:
        self._stop.set()
