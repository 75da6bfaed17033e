"""What `make run` prints: one readable line per request and per schedule run (coloured on a terminal
that supports it), handlers' warnings and errors as readable lines, and no CloudWatch metric blobs; or,
with `HANGAR_LOCAL_LOG=json`, one JSON object per request and the handlers' own Powertools JSON logs and
EMF metrics, as Lambda would write them to CloudWatch."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl

_SHOWN_APART = {"level", "message", "timestamp", "exception", "exception_name", "stack_trace", "location", "service",
                "xray_trace_id", "cold_start", "function_name", "function_memory_size", "function_arn",
                "function_request_id", "sampling_rate"}  # fmt: skip
_STATUS_COLOURS = {2: "32", 3: "36", 4: "33", 5: "31"}  # green, cyan, yellow, red


def log_mode() -> str:
    mode = os.environ.get("HANGAR_LOCAL_LOG", "pretty").lower()
    if mode not in ("pretty", "json"):
        raise ValueError(f"HANGAR_LOCAL_LOG={mode}: use pretty (the default) or json")
    return mode


def redacted_query(query_string: str) -> str:
    """`?name=…` for each parameter: query strings may carry credentials (`?token=hgr_...`), never logged."""
    names = [name for name, _ in parse_qsl(query_string, keep_blank_values=True)]
    return ("?" + "&".join(f"{name}=…" for name in names)) if names else ""


class Console:
    """The local stack's output (thread-safe: requests are served on many threads)."""

    def __init__(self, mode: str = "pretty", stream: TextIO = sys.stdout, access_log: bool = True) -> None:
        self.json = mode == "json"
        self.stream = stream
        self.access_log = access_log
        tty = getattr(stream, "isatty", lambda: False)()
        self.colour = not self.json and tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self._lock = threading.Lock()

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def print(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def error(self, text: str) -> None:
        """A gateway or start-up problem (tracebacks included), whatever the mode."""
        if self.json:
            self.print(json.dumps({"level": "ERROR", "message": text, "logger": "local"}))
        else:
            self.print(self.paint(text, "31"))

    def request(self, method: str, path: str, query: str, status: int, seconds: float, note: str | None) -> None:
        if not self.access_log:
            return
        shown = path + redacted_query(query)
        if self.json:
            entry = {"level": "INFO", "message": "request", "method": method, "path": shown, "status": status}
            self.print(json.dumps({**entry, "durationMs": round(seconds * 1000, 1), "gatewayResponse": note}))
            return
        stamp = time.strftime("%H:%M:%S")
        coloured = self.paint(str(status), _STATUS_COLOURS.get(status // 100, "0"))
        suffix = f"  {self.paint(note, '2')}" if note else ""
        self.print(f"{self.paint(stamp, '2')} {method} {shown} -> {coloured} ({seconds * 1000:.1f} ms){suffix}")

    def schedule(self, function_id: str, seconds: float, result: Any, failed: bool = False) -> None:
        if self.json:
            entry = {"level": "ERROR" if failed else "INFO", "message": "schedule", "function": function_id}
            self.print(json.dumps({**entry, "durationMs": round(seconds * 1000, 1), "result": result}, default=str))
            return
        outcome = self.paint("failed", "31") if failed else self.paint("ok", "32")
        summary = json.dumps(result, default=str, separators=(",", ":"))
        summary = summary if len(summary) <= 160 else summary[:157] + "..."
        stamp = time.strftime("%H:%M:%S")
        self.print(f"{self.paint(stamp, '2')} schedule {function_id} -> {outcome} ({seconds * 1000:.1f} ms)  {summary}")

    def install_handler_logging(self, service: str) -> None:
        """Pretty mode: the handlers' Powertools logger prints readable lines (its level is set to
        WARNING by the environment, so a request stays one line unless something is wrong)."""
        if self.json:
            return
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        console = self

        class Readable(LambdaPowertoolsFormatter):
            """Powertools' structured record, written as one line: time, level, message, key=value."""

            def serialize(self, log: Any) -> str:
                level = str(log.get("level", ""))
                fields = " ".join(f"{k}={v}" for k, v in log.items() if k not in _SHOWN_APART and v is not None)
                coloured = console.paint(level, "31" if level in ("ERROR", "CRITICAL") else "33")
                text = f"{console.paint(time.strftime('%H:%M:%S'), '2')} {coloured} {log.get('message')}  {fields}"
                return text.rstrip() + (f"\n{log['exception']}" if log.get("exception") else "")

        for handler in logging.getLogger(service).handlers:
            handler.setFormatter(Readable())
