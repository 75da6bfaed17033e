"""``hangar-agent`` command line: register, run, status."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any

from hangar_agent import __version__, log
from hangar_agent.agent import DEFAULT_GRACE_SECONDS, Agent
from hangar_agent.api import NetworkError, post_json
from hangar_agent.config import (
    AgentConfig,
    ConfigError,
    is_private,
    load_config,
    resolve_config_path,
    token_prefix,
    write_config,
)

REGISTER_PATH = "/v1/runners/register"
EXEC_ENV = "HANGAR_AGENT_EXEC"
GRACE_ENV = "HANGAR_AGENT_GRACE"
LOG_LEVEL_ENV = "HANGAR_AGENT_LOG_LEVEL"
ENROLLMENT_PREFIX = "hge_"


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 0 or number != number:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _api_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value.strip().rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hangar-agent", description="Hangar reference runner agent.")
    parser.add_argument("--version", action="version", version=f"hangar-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    reg = sub.add_parser("register", help="register this machine as a runner with an enrollment token")
    reg.add_argument("--api-url", required=True, type=_api_url, help="Hangar API base URL")
    reg.add_argument("--token", required=True, help="enrollment token (hge_...)")
    reg.add_argument("--name", help="runner name (default: chosen by the server)")
    reg.add_argument(
        "--label", dest="labels", action="append", metavar="LABEL", help="runner label (repeatable)"
    )
    reg.add_argument("--concurrency", type=_positive_int, help="number of jobs to run at once")
    reg.add_argument(
        "--config", help="config file path (default: $HANGAR_AGENT_CONFIG or ~/.config/hangar/agent.json)"
    )

    run = sub.add_parser("run", help="heartbeat, poll for jobs and run them")
    run.add_argument("--exec", dest="exec_command", metavar="COMMAND", help=f"job command (or ${EXEC_ENV})")
    run.add_argument("--config", help="config file path")
    run.add_argument(
        "--grace",
        type=_non_negative_float,
        metavar="SECONDS",
        help=(
            "on SIGTERM, let running jobs finish for this long "
            f"(default {DEFAULT_GRACE_SECONDS:g}, or ${GRACE_ENV})"
        ),
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help=f"log level (default info, or ${LOG_LEVEL_ENV})",
    )

    status = sub.add_parser("status", help="show this runner's registration (never the token)")
    status.add_argument("--config", help="config file path")
    return parser


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_register(args: argparse.Namespace) -> int:
    enrollment: str = args.token.strip()
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
    grace = args.grace
    if grace is None:
        env_grace = os.environ.get(GRACE_ENV)
        try:
            grace = _non_negative_float(env_grace) if env_grace else DEFAULT_GRACE_SECONDS
        except argparse.ArgumentTypeError as exc:
            return _fail(f"{GRACE_ENV}: {exc}")
    if not is_private(resolve_config_path(args.config)):
        log.warning("config_not_private", path=path, hint="chmod 600 the config file")
    exit_code: int = Agent(config, command, grace_seconds=grace).run()
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "register":
        return cmd_register(args)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "status":
        return cmd_status(args)
    return _fail(f"unknown command {args.command}", 2)  # pragma: no cover - argparse rejects it first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
