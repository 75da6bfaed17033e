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
EXEC_ENV = "HANGAR_AGENT_EXEC"
GRACE_ENV = "HANGAR_AGENT_GRACE"
LOG_LEVEL_ENV = "HANGAR_AGENT_LOG_LEVEL"
LOG_SPOOL_ENV = "HANGAR_AGENT_LOG_SPOOL"
ENROLLMENT_TOKEN_ENV = "HANGAR_ENROLLMENT_TOKEN"  # noqa: S105 - the variable's name, not a token
ENROLLMENT_PREFIX = "hge_"
STATUS_TIMEOUT_SECONDS = 10.0
_SIZE_SUFFIXES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

RUN_DESCRIPTION = """\
Heartbeat, poll Hangar for jobs, and run COMMAND once per job (up to the runner's concurrency at once).

For every job, COMMAND runs with /bin/sh -c in its own process group, in the agent's directory and
environment, and:
  stdin    is the job as JSON (_id, type, repositoryConfig, repositoryName, branch, targetId,
           labels, payload, timeoutSeconds, attempts, ...);
  env      adds HANGAR_JOB_ID (the job id) and HANGAR_ARTIFACTS_DIR (a fresh, empty directory);
  stderr   is the job's log: streamed to Hangar while the job runs (GET /v1/jobs/{id}/logs);
  stdout   is the result: a JSON object becomes the job's result, anything else is kept as
           {"output": "<last 16 KiB>"};
  exit     0 reports the job completed; non-zero reports it failed, with the exit status and the
           end of stderr as its error;
  files    left in $HANGAR_ARTIFACTS_DIR are uploaded as the job's artifacts after COMMAND exits and
           before the job is reported; a failed upload fails the job. The directory is removed
           afterwards.
A job the agent kills is reported failed with the error "cancelled" (cancelled in Hangar),
"timeout" (its timeoutSeconds) or "agent shutdown".

hangar-agent run exits 0 after SIGTERM/SIGINT (running jobs get --grace seconds to finish), 2 when
the server rejects the runner token (regenerated, or the runner deleted: register again), 1 when it
cannot start (configuration).
"""

SERVICE_DESCRIPTION = """\
Run this agent as a systemd service, from the unit file shipped with it.

--system (as root): a system service running as user hangar (created if missing); the runner's
  config moves to /etc/hangar/agent.json, settings go to /etc/hangar/agent.env, the unit to
  /etc/systemd/system/hangar-agent.service. The agent must be installed where user hangar can run it
  (the install script's --system puts it in /opt/hangar-agent).
--user: a service of your own systemd user manager (~/.config/systemd/user/hangar-agent.service,
  settings ~/.config/hangar/agent.env), with lingering enabled so that it runs without a login
  session and after a reboot.

Register first; the service is enabled and (re)started. To change the job command later, edit the
settings file and restart the service.
"""


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


def _byte_size(value: str) -> int:
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    suffix = text[-1:] if text[-1:] in _SIZE_SUFFIXES and not text[-1:].isdigit() else ""
    try:
        number = int(text[: len(text) - len(suffix)]) * _SIZE_SUFFIXES[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes (e.g. 8388608 or 8M): {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
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
    reg.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"read the enrollment token (hge_...) from FILE ('-': stdin); or set ${ENROLLMENT_TOKEN_ENV}",
    )
    reg.add_argument(
        "--token", help="the enrollment token itself (other users can see it in ps: prefer --token-file)"
    )
    reg.add_argument("--name", help="runner name (default: chosen by the server)")
    reg.add_argument(
        "--label", dest="labels", action="append", metavar="LABEL", help="runner label (repeatable)"
    )
    reg.add_argument("--concurrency", type=_positive_int, help="number of jobs to run at once")
    reg.add_argument(
        "--config", help="config file path (default: $HANGAR_AGENT_CONFIG or ~/.config/hangar/agent.json)"
    )

    run = sub.add_parser(
        "run",
        help="heartbeat, poll for jobs and run them",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    run.add_argument(
        "--log-spool",
        type=_byte_size,
        metavar="BYTES",
        help=(
            "memory per job for log output the server has not taken yet; past it, output is dropped "
            f"(and the log says so) rather than slowing the job (default 8M, or ${LOG_SPOOL_ENV})"
        ),
    )

    status = sub.add_parser(
        "status",
        help="show this runner's registration and whether the server sees it online (never the token)",
    )
    status.add_argument("--config", help="config file path")
    status.add_argument(
        "--offline", action="store_true", help="do not ask the server; show the local config only"
    )

    svc = sub.add_parser(
        "install-service",
        help="run this agent as a systemd service (system-wide, or for this user)",
        description=SERVICE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = svc.add_mutually_exclusive_group(required=True)
    mode.add_argument("--system", dest="mode", action="store_const", const="system", help="a system service")
    mode.add_argument("--user", dest="mode", action="store_const", const="user", help="a user service")
    svc.add_argument("--exec", dest="exec_command", metavar="COMMAND", help=f"job command (or ${EXEC_ENV})")
    svc.add_argument(
        "--grace", type=_non_negative_float, metavar="SECONDS", help=f"see run --grace (or ${GRACE_ENV})"
    )
    svc.add_argument("--config", help="the runner's config file (default: this user's)")
    svc.add_argument("--print", dest="print_only", action="store_true", help="print the unit; change nothing")
    return parser


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
        return _non_negative_float(env_grace) if env_grace else DEFAULT_GRACE_SECONDS
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
            spool = _byte_size(env_spool) if env_spool else DEFAULT_SPOOL_BYTES
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
