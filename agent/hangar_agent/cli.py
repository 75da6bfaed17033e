"""``hangar-agent`` command line: register, run, status, install-service."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hangar_agent import __version__, log
from hangar_agent.agent import DEFAULT_GRACE_SECONDS, EXIT_TOKEN_REJECTED, Agent
from hangar_agent.api import NetworkError, get_json, post_json
from hangar_agent.arguments import (
    ENROLLMENT_TOKEN_ENV,
    EXEC_ENV,
    GRACE_ENV,
    LOG_LEVEL_ENV,
    LOG_SPOOL_ENV,
    build_parser,
    byte_size,
    non_negative_float,
)
from hangar_agent.config import (
    AgentConfig,
    ConfigError,
    is_private,
    load_config,
    resolve_config_path,
    token_prefix,
    write_config,
)
from hangar_agent.logstream import DEFAULT_SPOOL_BYTES
from hangar_agent.service import (
    ServiceError,
    agent_command,
    install_system_service,
    install_user_service,
    render_unit,
)

REGISTER_PATH = "/v1/runners/register"
OWN_RUNNER_PATH = "/api/runners/me"
ENROLLMENT_PREFIX = "hge_"
STATUS_TIMEOUT_SECONDS = 10.0


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _enrollment_token(args: argparse.Namespace) -> str | int:
    """The enrollment token from --token-file, --token or $HANGAR_ENROLLMENT_TOKEN (exit code on error)."""
    if args.token is not None and args.token_file is not None:
        return _fail("give the enrollment token once: --token-file or --token, not both")
    if args.token_file is not None:
        if args.token_file == "-":  # noqa: S105 - stdin, not a token
            raw = sys.stdin.read()
        else:
            path = Path(args.token_file).expanduser()
            try:
                raw = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                return _fail(f"token_file: cannot read {path}: {reason}")
    elif args.token is not None:
        raw = args.token
    else:
        raw = os.environ.get(ENROLLMENT_TOKEN_ENV, "")
    token = raw.strip()
    if not token:
        return _fail(
            f"no enrollment token: pass --token-file FILE ('-' for stdin) or set {ENROLLMENT_TOKEN_ENV}"
        )
    return token


def cmd_register(args: argparse.Namespace) -> int:
    enrollment = _enrollment_token(args)
    if isinstance(enrollment, int):
        return enrollment
    if not enrollment.startswith(ENROLLMENT_PREFIX):
        return _fail(f"invalid_token: enrollment tokens start with {ENROLLMENT_PREFIX}")
    api_url: str = args.api_url
    host = urllib.parse.urlsplit(api_url).hostname or ""
    if api_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        print("warning: the API URL is not https; tokens will be sent in clear text", file=sys.stderr)

    body: dict[str, Any] = {"token": enrollment, "version": __version__}
    if args.name:
        body["name"] = args.name
    if args.labels:
        body["labels"] = list(args.labels)
    if args.concurrency is not None:
        body["configuredConcurrency"] = args.concurrency

    try:
        resp = post_json(api_url + REGISTER_PATH, body)
    except NetworkError as exc:
        return _fail(f"network_error: cannot reach {api_url}: {exc}")
    if not resp.ok:
        return _fail(f"{resp.error_code()}: {resp.error_message()}")

    payload: dict[str, Any] = resp.body if isinstance(resp.body, dict) else {}
    runner_raw = payload.get("runner")
    runner: dict[str, Any] = runner_raw if isinstance(runner_raw, dict) else {}
    runner_id = runner.get("id", runner.get("_id"))
    token = payload.get("token")
    if not isinstance(token, str) or not token or runner_id in (None, ""):
        return _fail("invalid_response: the server's answer has no runner id or token")
    prefix = runner.get("tokenPrefix")
    labels = runner.get("labels")
    concurrency = runner.get("configuredConcurrency")
    name = runner.get("name")
    config = AgentConfig(
        api_url=api_url,
        runner_id=str(runner_id),
        token=token,
        token_prefix=prefix if isinstance(prefix, str) and prefix else token_prefix(token),
        name=name if isinstance(name, str) else args.name,
        labels=[str(x) for x in labels] if isinstance(labels, list) else list(args.labels or []),
        configured_concurrency=(
            concurrency
            if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1
            else (args.concurrency or 1)
        ),
    )
    path = resolve_config_path(args.config)
    existed = path.exists()
    try:
        write_config(path, config)
    except OSError as exc:
        # The runner exists server-side now; say so, but never print the token.
        return _fail(
            f"config_write_failed: registered runner {config.runner_id} but could not write {path}: "
            f"{exc.strerror or exc}"
        )
    if existed:
        print(f"note: replaced the previous configuration in {path}", file=sys.stderr)
    print(f"Registered runner {config.runner_id}" + (f" ({config.name})" if config.name else ""))
    print(f"Runner id:    {config.runner_id}")
    print(f"Token prefix: {config.token_prefix}")
    print(f"Config:       {path}")
    return 0


def _load(args: argparse.Namespace) -> tuple[AgentConfig, str] | int:
    path = resolve_config_path(args.config)
    try:
        return load_config(path), str(path)
    except ConfigError as exc:
        return _fail(f"config: {exc}")


def _ago(timestamp: object) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "never"
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - when).total_seconds())
    if seconds < 0:
        return timestamp
    age = (
        f"{seconds} s"
        if seconds < 120
        else f"{seconds // 60} min"
        if seconds < 7200
        else f"{seconds // 3600} h"
    )
    return f"{timestamp} ({age} ago)"


def _server_status(config: AgentConfig) -> tuple[int, list[str]]:
    """What the server says about this runner (GET /api/runners/me): exit code and lines to print."""
    try:
        resp = get_json(config.api_url + OWN_RUNNER_PATH, token=config.token, timeout=STATUS_TIMEOUT_SECONDS)
    except NetworkError as exc:
        return 1, [f"Server:       unreachable ({exc})"]
    if resp.status == 401:
        return EXIT_TOKEN_REJECTED, [
            "Server:       runner token rejected: regenerated, or the runner deleted (register again)"
        ]
    if not resp.ok:
        return 1, [f"Server:       HTTP {resp.status}: {resp.error_code()}: {resp.error_message()}"]
    data = resp.data()
    return 0, [
        f"Status:       {data.get('status', 'unknown')} (as the server sees it)",
        f"Heartbeat:    {_ago(data.get('lastHeartbeat'))}",
        f"Jobs:         {data.get('currentJobs', 0)} running, {data.get('jobsCompleted', 0)} completed",
        f"Version:      {data.get('version') or '-'} (as last reported)",
    ]


def cmd_status(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    config, path = loaded
    print(f"Runner id:    {config.runner_id}")
    print(f"Name:         {config.name or '-'}")
    print(f"API URL:      {config.api_url}")
    print(f"Token prefix: {config.token_prefix}")
    print(f"Labels:       {', '.join(config.labels) if config.labels else '-'}")
    print(f"Concurrency:  {config.configured_concurrency}")
    print(f"Config:       {path}")
    if args.offline:
        return 0
    code, lines = _server_status(config)
    for line in lines:
        print(line)
    return code


def _grace(args: argparse.Namespace) -> float | int:
    """--grace, else $HANGAR_AGENT_GRACE, else the default (an exit code when the variable is invalid)."""
    if args.grace is not None:
        return float(args.grace)
    env_grace = os.environ.get(GRACE_ENV)
    try:
        return non_negative_float(env_grace) if env_grace else DEFAULT_GRACE_SECONDS
    except argparse.ArgumentTypeError as exc:
        return _fail(f"{GRACE_ENV}: {exc}")


def cmd_install_service(args: argparse.Namespace) -> int:
    grace = _grace(args)
    if isinstance(grace, int):
        return grace
    if args.print_only:
        print(render_unit(args.mode, agent_command(), grace), end="")
        return 0
    command = args.exec_command or os.environ.get(EXEC_ENV) or ""
    config = resolve_config_path(args.config)
    try:
        if args.mode == "system":
            lines = install_system_service(command, grace, config)
        else:
            lines = install_user_service(command, grace, config)
    except ServiceError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or 'install-service'}: {exc.strerror or exc}")
    for line in lines:
        print(line)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    level_name = (args.log_level or os.environ.get(LOG_LEVEL_ENV) or "info").upper()
    log.setup_logging(level_name if level_name in ("DEBUG", "INFO", "WARNING", "ERROR") else logging.INFO)
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    config, path = loaded
    log.register_secret(config.token, f"{config.token_prefix}[redacted]")
    command = args.exec_command or os.environ.get(EXEC_ENV)
    if not command:
        return _fail(f"no job command: pass --exec COMMAND or set {EXEC_ENV}")
    grace = _grace(args)
    if isinstance(grace, int):
        return grace
    spool = args.log_spool
    if spool is None:
        env_spool = os.environ.get(LOG_SPOOL_ENV)
        try:
            spool = byte_size(env_spool) if env_spool else DEFAULT_SPOOL_BYTES
        except argparse.ArgumentTypeError as exc:
            return _fail(f"{LOG_SPOOL_ENV}: {exc}")
    if not is_private(resolve_config_path(args.config)):
        log.warning("config_not_private", path=path, hint="chmod 600 the config file")
    exit_code: int = Agent(config, command, grace_seconds=grace, log_spool_bytes=spool).run()
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "register":
        return cmd_register(args)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "status":
        return cmd_status(args)
    if args.command == "install-service":
        return cmd_install_service(args)
    return _fail(f"unknown command {args.command}", 2)  # pragma: no cover - argparse rejects it first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
