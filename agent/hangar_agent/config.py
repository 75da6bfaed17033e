"""Agent configuration file: location, atomic private write, validated load."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "HANGAR_AGENT_CONFIG"


class ConfigError(Exception):
    """The configuration file is missing or malformed."""


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    runner_id: str
    token: str = field(repr=False)
    token_prefix: str
    name: str | None
    labels: list[str]
    configured_concurrency: int

    def to_json(self) -> dict[str, Any]:
        return {
            "apiUrl": self.api_url,
            "runnerId": self.runner_id,
            "token": self.token,
            "tokenPrefix": self.token_prefix,
            "name": self.name,
            "labels": list(self.labels),
            "configuredConcurrency": self.configured_concurrency,
        }

    @classmethod
    def from_json(cls, data: object) -> AgentConfig:
        if not isinstance(data, dict):
            raise ConfigError("config must be a JSON object")
        api_url = data.get("apiUrl")
        runner_id = data.get("runnerId")
        token = data.get("token")
        if not isinstance(api_url, str) or not api_url:
            raise ConfigError("config is missing apiUrl")
        if not isinstance(runner_id, str) or not runner_id:
            raise ConfigError("config is missing runnerId")
        if not isinstance(token, str) or not token:
            raise ConfigError("config is missing token")
        prefix = data.get("tokenPrefix")
        if not isinstance(prefix, str) or not prefix:
            prefix = token_prefix(token)
        name = data.get("name")
        labels_raw = data.get("labels")
        labels = [str(x) for x in labels_raw] if isinstance(labels_raw, list) else []
        concurrency = data.get("configuredConcurrency")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            concurrency = 1
        return cls(
            api_url=api_url.rstrip("/"),
            runner_id=runner_id,
            token=token,
            token_prefix=prefix,
            name=name if isinstance(name, str) else None,
            labels=labels,
            configured_concurrency=concurrency,
        )


def token_prefix(token: str) -> str:
    """A short, non-secret identifier for a token (used only when the server sent none)."""
    head, sep, _ = token.partition("_")
    if sep:
        return f"{head}_{token[len(head) + 1 : len(head) + 5]}"
    return token[:4]


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "hangar" / "agent.json"


def resolve_config_path(explicit: str | None) -> Path:
    return Path(explicit).expanduser() if explicit else default_config_path()


def write_config(path: Path, config: AgentConfig) -> None:
    """Atomically write ``config`` to ``path`` with mode 0600 (never readable by others, even briefly)."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)
    payload = (json.dumps(config.to_json(), indent=2) + "\n").encode()
    tmp = parent / f".{path.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load_config(path: Path) -> AgentConfig:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (run 'hangar-agent register' first)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc.msg}") from None
    return AgentConfig.from_json(data)


def is_private(path: Path) -> bool:
    """True when the file is not accessible by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return not (mode & (stat.S_IRWXG | stat.S_IRWXO))
