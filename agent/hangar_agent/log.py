"""One-line, key=value structured logging to stderr.

Every event is rendered as::

    2026-11-22T10:00:00Z level=info event=job_started job=job_123

Secrets registered with :func:`register_secret` are scrubbed from every line as a
defence in depth; callers must still never pass the runner token to the logger.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping

LOGGER_NAME = "hangar_agent"
logger = logging.getLogger(LOGGER_NAME)

_secrets_lock = threading.Lock()
_secrets: list[tuple[str, str]] = []


def register_secret(secret: str, replacement: str) -> None:
    """Make the formatter replace ``secret`` with ``replacement`` in every line."""
    if not secret:
        return
    with _secrets_lock:
        _secrets.append((secret, replacement))


def _scrub(text: str) -> str:
    with _secrets_lock:
        pairs = list(_secrets)
    for secret, replacement in pairs:
        if secret in text:
            text = text.replace(secret, replacement)
    return text


def format_value(value: object) -> str:
    """Render one field value; quote it (JSON style) when it contains spaces or specials."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    elif isinstance(value, list | tuple | set | frozenset):
        text = ",".join(str(item) for item in value)
    else:
        text = str(value)
    if text == "" or any(ch in text for ch in ' "=\\\n\r\t'):
        return json.dumps(text)
    return text


def format_fields(fields: Mapping[str, object]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in fields.items() if value is not None)


class KeyValueFormatter(logging.Formatter):
    """``<UTC timestamp> level=<level> <message>`` on exactly one line."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.startswith("event="):
            message = "event=log " + format_fields({"msg": message})
        line = f"{self.formatTime(record)} level={record.levelname.lower()} {message}"
        if record.exc_info:
            exc_text = self.formatException(record.exc_info)
            line += " " + format_fields({"exc": exc_text})
        # Never emit more than one physical line per event.
        line = line.replace("\r", "\\r").replace("\n", "\\n")
        return _scrub(line)


def setup_logging(level: int | str = logging.INFO) -> None:
    """Install the stderr handler on the package logger (idempotent)."""
    for handler in list(logger.handlers):
        if getattr(handler, "_hangar_agent", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler._hangar_agent = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def event(level: int, name: str, **fields: object) -> None:
    """Log one event line: ``event=<name> key=value ...`` (``None`` values are skipped)."""
    if not logger.isEnabledFor(level):
        return
    rest = format_fields(fields)
    logger.log(level, f"event={name}" + (f" {rest}" if rest else ""))


def debug(name: str, **fields: object) -> None:
    event(logging.DEBUG, name, **fields)


def info(name: str, **fields: object) -> None:
    event(logging.INFO, name, **fields)


def warning(name: str, **fields: object) -> None:
    event(logging.WARNING, name, **fields)


def error(name: str, **fields: object) -> None:
    event(logging.ERROR, name, **fields)
