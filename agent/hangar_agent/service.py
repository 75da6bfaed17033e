"""``hangar-agent install-service``: the agent as a systemd service, from the one unit file shipped in this
package (``hangar-agent.service``).

* ``--system`` (root): a system service running as user ``hangar`` (created if missing, home
  /var/lib/hangar-agent), config /etc/hangar/agent.json, settings /etc/hangar/agent.env, unit
  /etc/systemd/system/hangar-agent.service; enabled and (re)started.
* ``--user``: a user service of whoever runs it, settings ~/.config/hangar/agent.env, unit
  ~/.config/systemd/user/hangar-agent.service; enabled and (re)started, and lingering enabled
  (``loginctl enable-linger``) so that it runs without a login session and after a reboot.

Nothing is changed until every check passed (root, systemd, a runner config, an agent the service's
user can run); files written before a later step fails are removed again.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import re
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from hangar_agent.config import ConfigError, load_config, write_config

Mode = Literal["system", "user"]
UNIT_NAME = "hangar-agent.service"
SYSTEM_USER = "hangar"
ENV_FILE_NAME = "agent.env"
# The agent's stop sequence after SIGTERM: the grace period, then up to 5 s to kill what is left, 5 s for
# the log, 15 s for the final reports and 5 s for the "offline" heartbeat (agent.py); TimeoutStopSec
# leaves a margin on top.
STOP_OVERHEAD_SECONDS = 45
_PLACEHOLDER_RE = re.compile(r"@[A-Z_]+@")


class ServiceError(Exception):
    """The service could not be installed; the message says why and what to do."""


@dataclass(frozen=True)
class Layout:
    """Where a mode's files go. The defaults are the real locations; tests point them elsewhere."""

    unit_dir: Path
    settings_dir: Path  # holds agent.env (and, in system mode, agent.json)
    home: Path | None = None  # system mode: the service user's home

    @classmethod
    def system(cls) -> Layout:
        return cls(
            unit_dir=Path("/etc/systemd/system"),
            settings_dir=Path("/etc/hangar"),
            home=Path("/var/lib/hangar-agent"),
        )

    @classmethod
    def user(cls, environ: dict[str, str] | None = None) -> Layout:
        env = os.environ if environ is None else environ
        config_home = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME") or Path.home()) / ".config")
        return cls(unit_dir=config_home / "systemd" / "user", settings_dir=config_home / "hangar")

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / UNIT_NAME

    @property
    def env_path(self) -> Path:
        return self.settings_dir / ENV_FILE_NAME

    @property
    def system_config(self) -> Path:
        return self.settings_dir / "agent.json"


class SystemOps:
    """What install-service does to the machine beyond writing files (tests substitute a recorder)."""

    def run(self, argv: Sequence[str]) -> None:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)
        except FileNotFoundError:
            raise ServiceError(f"{argv[0]} not found: is this a systemd machine?") from None
        except subprocess.TimeoutExpired:
            raise ServiceError(f"{' '.join(argv)} did not finish within 120 s") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise ServiceError(
                f"{' '.join(argv)} failed: {detail[-1] if detail else f'exit {done.returncode}'}"
            )

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def systemd_booted(self) -> bool:
        return Path("/run/systemd/system").is_dir()  # sd_booted(3)

    def account(self, name: str) -> tuple[int, int] | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def login_name(self) -> str:
        return pwd.getpwuid(os.getuid()).pw_name

    def chown(self, path: Path, uid: int, gid: int) -> None:
        os.chown(path, uid, gid)

    def unreachable_part(self, path: Path) -> Path | None:
        """The first part of ``path`` another user cannot use (a directory without o+x, a file without
        o+rx), or None: the service user is not the owner of what root or another user installed."""
        resolved = path.resolve()
        for part in [resolved, *resolved.parents]:
            try:
                mode = part.stat().st_mode
            except OSError:
                return part
            needed = stat.S_IXOTH if part != resolved else stat.S_IROTH | stat.S_IXOTH
            if mode & needed != needed:
                return part
        return None


def agent_command() -> list[str]:
    """How the service starts this same agent: the console script next to this interpreter (a venv or
    pipx install), else this interpreter with ``-m hangar_agent``."""
    interpreter = os.path.abspath(sys.executable)  # not resolved: a venv's python is a symlink out of it
    script = Path(interpreter).parent / "hangar-agent"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [interpreter, "-m", "hangar_agent"]


def _exec_word(word: str) -> str:
    """One word of an ExecStart= line: % and $ escaped, quoted when it has spaces or quotes."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", escaped):
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def _env_value(value: str) -> str:
    """A double-quoted EnvironmentFile= value (systemd unescapes \\\\, \\", \\$ and \\` in it)."""
    return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'


def timeout_stop_seconds(grace: float) -> int:
    return math.ceil(grace) + STOP_OVERHEAD_SECONDS


def unit_template() -> str:
    return resources.files("hangar_agent").joinpath(UNIT_NAME).read_text(encoding="utf-8")


def render_unit(mode: Mode, command: Sequence[str], grace: float) -> str:
    """The shipped unit with its @...@ values filled in for ``mode``."""
    values = {
        "@ACCOUNT@": (
            f"User={SYSTEM_USER}\nGroup={SYSTEM_USER}"
            if mode == "system"
            else "# A user service: it runs as the user whose service manager starts it."
        ),
        "@AGENT@": " ".join(_exec_word(word) for word in command),
        "@TIMEOUT_STOP_SEC@": str(timeout_stop_seconds(grace)),
        "@WANTED_BY@": "multi-user.target" if mode == "system" else "default.target",
    }
    return _PLACEHOLDER_RE.sub(lambda match: values[match.group(0)], unit_template())


def render_env_file(exec_command: str, grace: float, config: Path) -> str:
    return (
        "# Settings of the hangar-agent service (read by systemd: EnvironmentFile=). After a change:\n"
        "# systemctl [--user] restart hangar-agent\n"
        f"HANGAR_AGENT_EXEC={_env_value(exec_command)}\n"
        f"HANGAR_AGENT_GRACE={_env_value(f'{grace:g}')}\n"
        f"HANGAR_AGENT_CONFIG={_env_value(str(config))}\n"
    )


@dataclass
class _Written:
    """Files this run created (not replaced), removed again if a later step fails."""

    created: list[Path] = field(default_factory=list)

    def write(self, path: Path, text: str, mode: int) -> None:
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
        os.replace(tmp, path)
        if not existed:
            self.created.append(path)

    def undo(self) -> None:
        for path in reversed(self.created):
            with contextlib.suppress(OSError):
                path.unlink()


def _install_and_start(
    mode: Mode, layout: Layout, ops: SystemOps, env_text: str, env_mode: int, unit: str
) -> None:
    """Write the settings and the unit, then reload, enable and (re)start it; on failure remove the files
    this call created."""
    systemctl = ["systemctl"] if mode == "system" else ["systemctl", "--user"]
    written = _Written()
    try:
        written.write(layout.env_path, env_text, env_mode)
        written.write(layout.unit_path, unit, 0o644)
        for verb in (["daemon-reload"], ["enable", UNIT_NAME], ["restart", UNIT_NAME]):
            ops.run([*systemctl, *verb])
    except (ServiceError, OSError):
        written.undo()
        raise


def _not_registered(*paths: Path) -> ServiceError:
    return ServiceError(
        f"no runner configuration at {' or '.join(str(path) for path in paths)}: register first "
        "(hangar-agent register --api-url URL --token-file FILE), then run install-service again"
    )


def _check_exec(exec_command: str) -> None:
    if not exec_command.strip():
        raise ServiceError("no job command: pass --exec COMMAND (or set HANGAR_AGENT_EXEC)")
    if "\n" in exec_command or "\r" in exec_command:
        raise ServiceError("the job command must be one line: put a longer script in a file and run that")


def _nologin_shell() -> str:
    for candidate in ("/usr/sbin/nologin", "/sbin/nologin"):
        if os.path.exists(candidate):
            return candidate
    return "/bin/false"


def install_system_service(
    exec_command: str,
    grace: float,
    config_source: Path,
    *,
    command: Sequence[str] | None = None,
    layout: Layout | None = None,
    ops: SystemOps | None = None,
) -> list[str]:
    """Install and start the system service; the lines to tell the user."""
    layout = layout or Layout.system()
    ops = ops or SystemOps()
    command = list(command or agent_command())
    _check_exec(exec_command)
    if not ops.is_root():
        raise ServiceError(
            "--system installs a service for the whole machine: run it as root (sudo), or use --user"
        )
    if not ops.systemd_booted():
        raise ServiceError("systemd is not running on this machine (no /run/systemd/system)")
    for part in (Path(command[0]), Path(sys.executable)):
        blocked = ops.unreachable_part(part)
        if blocked is not None:
            raise ServiceError(
                f"user {SYSTEM_USER} could not run {part}: {blocked} is not accessible to other users. "
                "Install the agent where every user can run it (the install script's --system puts it in "
                "/opt/hangar-agent)"
            )
    target = layout.system_config
    source = config_source if config_source.exists() else None
    if source is None and not target.exists():
        raise _not_registered(config_source, target)
    lines: list[str] = []
    account = ops.account(SYSTEM_USER)
    if account is None:
        home = layout.home or Path("/var/lib/hangar-agent")
        ops.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--home-dir",
                str(home),
                "--create-home",
                "--shell",
                _nologin_shell(),
                "--comment",
                "Hangar runner agent",
                SYSTEM_USER,
            ]
        )
        account = ops.account(SYSTEM_USER)
        if account is None:
            raise ServiceError(f"useradd did not create user {SYSTEM_USER}")
        lines.append(f"created system user {SYSTEM_USER} (home {home})")
    uid, gid = account

    layout.settings_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.settings_dir, 0o750)  # noqa: S103 - group hangar reads its config here, others nothing
    ops.chown(layout.settings_dir, 0, gid)
    if source is not None and source.resolve() != target.resolve():
        try:
            write_config(target, load_config(source))
        except ConfigError as exc:
            raise ServiceError(str(exc)) from None
        source.unlink()
        lines.append(f"moved the runner configuration {source} to {target}")
    os.chmod(target, 0o600)
    ops.chown(target, uid, gid)

    _install_and_start(
        "system",
        layout,
        ops,
        render_env_file(exec_command, grace, target),
        0o644,
        render_unit("system", command, grace),
    )
    lines += [
        f"installed {layout.unit_path} (settings: {layout.env_path})",
        f"started: systemctl status {UNIT_NAME}; logs: journalctl -u {UNIT_NAME} -f",
        removal_hint("system", layout),
    ]
    return lines


def install_user_service(
    exec_command: str,
    grace: float,
    config: Path,
    *,
    command: Sequence[str] | None = None,
    layout: Layout | None = None,
    ops: SystemOps | None = None,
) -> list[str]:
    """Install and start the user service, and enable lingering; the lines to tell the user."""
    layout = layout or Layout.user()
    ops = ops or SystemOps()
    command = list(command or agent_command())
    _check_exec(exec_command)
    if not config.exists():
        raise _not_registered(config)
    try:
        ops.run(["systemctl", "--user", "show-environment"])
    except ServiceError as exc:
        raise ServiceError(
            f"cannot reach your systemd user manager ({exc}). Log in as this user directly (not with su), or "
            "install a system service instead: sudo hangar-agent install-service --system"
        ) from None
    env_text = render_env_file(exec_command, grace, config.resolve())
    _install_and_start("user", layout, ops, env_text, 0o600, render_unit("user", command, grace))
    lines = [
        f"installed {layout.unit_path} (settings: {layout.env_path})",
        f"started: systemctl --user status {UNIT_NAME}; logs: journalctl --user -u {UNIT_NAME} -f",
        removal_hint("user", layout),
    ]
    user = ops.login_name()
    try:
        ops.run(["loginctl", "enable-linger", user])
        lines.append(
            f"lingering enabled for {user}: the service runs without a login session and after a reboot"
        )
    except ServiceError as exc:
        lines.append(
            f"warning: could not enable lingering ({exc}): the service stops when you log out; "
            f"ask an administrator to run: sudo loginctl enable-linger {user}"
        )
    return lines


def removal_hint(mode: Mode, layout: Layout) -> str:
    user = "--user " if mode == "user" else ""
    return f"to remove it: systemctl {user}disable --now {UNIT_NAME}; rm {layout.unit_path} {layout.env_path}"
