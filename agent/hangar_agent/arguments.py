"""``hangar-agent``'s command line: its commands, options, the environment variables that stand in for
them, and how each option's value is checked."""

from __future__ import annotations

import argparse
import urllib.parse

from hangar_agent import __version__
from hangar_agent.agent import DEFAULT_GRACE_SECONDS

EXEC_ENV = "HANGAR_AGENT_EXEC"
GRACE_ENV = "HANGAR_AGENT_GRACE"
LOG_LEVEL_ENV = "HANGAR_AGENT_LOG_LEVEL"
LOG_SPOOL_ENV = "HANGAR_AGENT_LOG_SPOOL"
ENROLLMENT_TOKEN_ENV = "HANGAR_ENROLLMENT_TOKEN"  # noqa: S105 - the variable's name, not a token
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

hangar-agent run exits 0 after SIGTERM/SIGINT (running jobs get --grace seconds to finish; the runner
then reads offline at once), 2 when the server rejects the runner token (regenerated, or the runner
deleted: register again), 1 when it cannot start (configuration).
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


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 0 or number != number:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def byte_size(value: str) -> int:
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    suffix = text[-1:] if text[-1:] in _SIZE_SUFFIXES and not text[-1:].isdigit() else ""
    try:
        number = int(text[: len(text) - len(suffix)]) * _SIZE_SUFFIXES[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes (e.g. 8388608 or 8M): {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def api_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value.strip().rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hangar-agent", description="Hangar reference runner agent.")
    parser.add_argument("--version", action="version", version=f"hangar-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    reg = sub.add_parser("register", help="register this machine as a runner with an enrollment token")
    reg.add_argument("--api-url", required=True, type=api_url, help="Hangar API base URL")
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
    reg.add_argument("--concurrency", type=positive_int, help="number of jobs to run at once")
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
        type=non_negative_float,
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
        type=byte_size,
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
        "--grace", type=non_negative_float, metavar="SECONDS", help=f"see run --grace (or ${GRACE_ENV})"
    )
    svc.add_argument("--config", help="the runner's config file (default: this user's)")
    svc.add_argument("--print", dest="print_only", action="store_true", help="print the unit; change nothing")
    return parser
