"""`hangar-agent install-service`: the one shipped unit, verified by `systemd-analyze verify` as installed in
both modes, and the install steps (user, files, systemctl, lingering, rollback) with the machine's commands
recorded instead of run. systemd-analyze works without systemd running (no PID 1 needed); installing and
starting a real service needs a booted systemd, which tests do not have."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hangar_agent.service import (
    Layout,
    ServiceError,
    SystemOps,
    agent_command,
    install_system_service,
    install_user_service,
    render_env_file,
    render_unit,
    unit_template,
)
from harness import AGENT_DIR, cli

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (make test installs Debian's systemd package)"
)
CONFIG = {"apiUrl": "http://127.0.0.1:1", "runnerId": "rnr_1", "token": "hgr_x", "tokenPrefix": "p", "labels": []}


def verify(unit: Path, mode: str, tmp_path: Path) -> str:
    """systemd-analyze verify's complaints about ``unit`` ('' when it has none)."""
    assert SYSTEMD_ANALYZE is not None
    env = dict(os.environ)
    argv = [SYSTEMD_ANALYZE, "verify", str(unit)]
    if mode == "user":
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)  # the user manager it simulates needs one
        argv.insert(1, "--user")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f"\n(exit {done.returncode})")


class FakeOps(SystemOps):
    """Records what install-service would do to the machine."""

    def __init__(
        self,
        *,
        root: bool = True,
        booted: bool = True,
        has_user: bool = False,
        fail: Callable[[Sequence[str]], bool] | None = None,
        unreachable: Path | None = None,
    ) -> None:
        self.root, self.booted, self.fail, self.unreachable = root, booted, fail, unreachable
        self.users: dict[str, tuple[int, int]] = {"hangar": (990, 991)} if has_user else {}
        self.calls: list[list[str]] = []
        self.chowns: list[tuple[Path, int, int]] = []

    def run(self, argv: Sequence[str]) -> None:
        self.calls.append(list(argv))
        if self.fail is not None and self.fail(argv):
            raise ServiceError(f"{' '.join(argv)} failed: Failed to connect to bus")
        if argv[0] == "useradd":
            self.users[argv[-1]] = (990, 991)

    def is_root(self) -> bool:
        return self.root

    def systemd_booted(self) -> bool:
        return self.booted

    def account(self, name: str) -> tuple[int, int] | None:
        return self.users.get(name)

    def login_name(self) -> str:
        return "alice"

    def chown(self, path: Path, uid: int, gid: int) -> None:
        self.chowns.append((path, uid, gid))

    def unreachable_part(self, path: Path) -> Path | None:
        return self.unreachable


def layout_in(tmp_path: Path, mode: str) -> Layout:
    base = tmp_path / mode
    if mode == "system":
        return Layout(unit_dir=base / "systemd", settings_dir=base / "etc-hangar", home=base / "home")
    return Layout(unit_dir=base / "config" / "systemd" / "user", settings_dir=base / "config" / "hangar")


def write_runner_config(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(CONFIG))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- the unit


@pytest.mark.parametrize("mode", ["system", "user"])
def test_the_unit_keeps_jobs_alive_through_the_grace_period(mode: str) -> None:
    unit = render_unit(mode, ["/opt/hangar-agent/venv/bin/hangar-agent"], grace=30)  # type: ignore[arg-type]
    lines = unit.splitlines()
    for directive in (
        "Wants=network-online.target",
        "After=network-online.target",
        "KillMode=mixed",  # SIGTERM to the agent only: its jobs get the grace period
        "KillSignal=SIGTERM",
        "TimeoutStopSec=75",  # grace 30 + the kill, log and report time
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "EnvironmentFile=%E/hangar/agent.env",
        "ExecStart=/opt/hangar-agent/venv/bin/hangar-agent run",
    ):
        assert directive in lines, directive
    assert ("User=hangar" in lines) == (mode == "system")
    assert f"WantedBy={'multi-user.target' if mode == 'system' else 'default.target'}" in lines
    assert "@" not in unit.replace("hangar-agent install-service", "")
    assert "TimeoutStopSec=165" in render_unit(mode, ["/x"], grace=120).splitlines()  # type: ignore[arg-type]


def test_the_shipped_unit_is_the_one_file_in_the_package() -> None:
    shipped = (AGENT_DIR / "hangar_agent" / "hangar-agent.service").read_text()
    assert unit_template() == shipped
    assert "hangar-agent.service" in (AGENT_DIR / "pyproject.toml").read_text()  # packaged with the agent


def test_the_agent_readme_shows_the_unit_as_installed() -> None:
    readme = (AGENT_DIR / "README.md").read_text()
    shown = readme.split("```ini\n", 1)[1].split("```", 1)[0]
    rendered = render_unit("system", ["/opt/hangar-agent/venv/bin/hangar-agent"], grace=30)

    def directives(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert directives(shown) == directives(rendered)


@needs_systemd_analyze
@pytest.mark.parametrize("mode", ["system", "user"])
def test_systemd_analyze_verify_accepts_the_unit_as_installed(mode: str, tmp_path: Path) -> None:
    unit = tmp_path / "hangar-agent.service"
    unit.write_text(render_unit(mode, agent_command(), grace=30))  # type: ignore[arg-type]
    assert verify(unit, mode, tmp_path) == ""


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_awkward_paths_and_catches_a_broken_unit(tmp_path: Path) -> None:
    odd = tmp_path / "my agents 100%" / "bin"
    odd.mkdir(parents=True)
    agent = odd / "hangar-agent"
    agent.write_text("#!/bin/sh\n")
    agent.chmod(0o755)
    unit = tmp_path / "hangar-agent.service"
    text = render_unit("system", [str(agent)], grace=5)
    assert f'ExecStart="{str(agent).replace("%", "%%")}" run' in text.splitlines()
    unit.write_text(text)
    assert verify(unit, "system", tmp_path) == ""
    # The check can fail: a unit systemd would misread is reported.
    unit.write_text(text.replace("KillMode=mixed", "KillMode=gently"))
    assert "KillMode" in verify(unit, "system", tmp_path) or "kill mode" in verify(unit, "system", tmp_path)
    unit.write_text(text.replace(str(agent).replace("%", "%%"), str(odd / "missing").replace("%", "%%")))
    assert "not executable" in verify(unit, "system", tmp_path)


def test_the_environment_file_quotes_the_command_for_systemd() -> None:
    env = render_env_file('run-scan --name "a b" $HOME \\n `x`', 12.5, Path("/etc/hangar/agent.json"))
    assert 'HANGAR_AGENT_EXEC="run-scan --name \\"a b\\" \\$HOME \\\\n \\`x\\`"' in env.splitlines()
    assert 'HANGAR_AGENT_GRACE="12.5"' in env.splitlines()
    assert 'HANGAR_AGENT_CONFIG="/etc/hangar/agent.json"' in env.splitlines()


# --------------------------------------------------------------------------- user mode


@needs_systemd_analyze
def test_user_service_is_installed_started_and_lingering(tmp_path: Path) -> None:
    layout = layout_in(tmp_path, "user")
    config = write_runner_config(layout.settings_dir / "agent.json")
    ops = FakeOps(root=False)
    lines = install_user_service("/usr/bin/scan --all", 20, config, layout=layout, ops=ops)
    assert ops.calls == [
        ["systemctl", "--user", "show-environment"],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "hangar-agent.service"],
        ["systemctl", "--user", "restart", "hangar-agent.service"],
        ["loginctl", "enable-linger", "alice"],
    ]
    assert any("lingering enabled for alice" in line for line in lines)
    assert stat.S_IMODE(layout.env_path.stat().st_mode) == 0o600
    assert 'HANGAR_AGENT_EXEC="/usr/bin/scan --all"' in layout.env_path.read_text()
    assert f'HANGAR_AGENT_CONFIG="{config.resolve()}"' in layout.env_path.read_text()
    assert layout.unit_path.read_text() == render_unit("user", agent_command(), 20)
    assert verify(layout.unit_path, "user", tmp_path) == ""


def test_user_service_without_lingering_still_installs_with_a_warning(tmp_path: Path) -> None:
    layout = layout_in(tmp_path, "user")
    config = write_runner_config(layout.settings_dir / "agent.json")
    ops = FakeOps(root=False, fail=lambda argv: argv[0] == "loginctl")
    lines = install_user_service("scan", 30, config, layout=layout, ops=ops)
    assert layout.unit_path.exists()
    assert any(line.startswith("warning: could not enable lingering") for line in lines)
    assert any("sudo loginctl enable-linger alice" in line for line in lines)


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        ("show-environment", "cannot reach your systemd user manager"),  # before any file is written
        ("daemon-reload", "daemon-reload failed"),  # after: the files written are removed again
        ("enable", "enable hangar-agent.service failed"),
    ],
)
def test_a_failing_systemctl_leaves_no_files_behind(tmp_path: Path, failing: str, message: str) -> None:
    layout = layout_in(tmp_path, "user")
    config = write_runner_config(layout.settings_dir / "agent.json")
    ops = FakeOps(root=False, fail=lambda argv: failing in argv)
    with pytest.raises(ServiceError, match=message):
        install_user_service("scan", 30, config, layout=layout, ops=ops)
    assert not layout.unit_path.exists() and not layout.env_path.exists()
    assert config.exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [("", "no job command"), ("a\nb", "must be one line")],
)
def test_user_service_refuses_a_missing_or_multiline_command(tmp_path: Path, command: str, message: str) -> None:
    layout = layout_in(tmp_path, "user")
    config = write_runner_config(layout.settings_dir / "agent.json")
    with pytest.raises(ServiceError, match=message):
        install_user_service(command, 30, config, layout=layout, ops=FakeOps())


def test_user_service_needs_a_registered_runner(tmp_path: Path) -> None:
    layout = layout_in(tmp_path, "user")
    with pytest.raises(ServiceError, match="register first"):
        install_user_service("scan", 30, tmp_path / "none.json", layout=layout, ops=FakeOps())


# --------------------------------------------------------------------------- system mode


@needs_systemd_analyze
def test_system_service_creates_the_user_moves_the_config_and_starts(tmp_path: Path) -> None:
    layout = layout_in(tmp_path, "system")
    source = write_runner_config(tmp_path / "root-home" / ".config" / "hangar" / "agent.json")
    ops = FakeOps()
    lines = install_system_service("/usr/local/bin/scan", 30, source, layout=layout, ops=ops)
    (useradd,) = [call for call in ops.calls if call[0] == "useradd"]
    assert useradd[:2] == ["useradd", "--system"] and useradd[-1] == "hangar"
    assert ["--home-dir", str(layout.home)] == useradd[3:5] and "--create-home" in useradd
    assert ops.calls[1:] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "hangar-agent.service"],
        ["systemctl", "restart", "hangar-agent.service"],
    ]
    target = layout.system_config
    assert not source.exists()
    assert json.loads(target.read_text()) == {**CONFIG, "name": None, "configuredConcurrency": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.settings_dir.stat().st_mode) == 0o750
    assert (target, 990, 991) in ops.chowns and (layout.settings_dir, 0, 991) in ops.chowns
    assert f'HANGAR_AGENT_CONFIG="{target}"' in layout.env_path.read_text()
    assert any(f"moved the runner configuration {source} to {target}" == line for line in lines)
    assert verify(layout.unit_path, "system", tmp_path) == ""
    assert "User=hangar" in layout.unit_path.read_text().splitlines()

    # Again (e.g. a new command): the user exists, the config is already in place.
    ops = FakeOps(has_user=True)
    install_system_service("/usr/local/bin/scan --v2", 30, source, layout=layout, ops=ops)
    assert [call[0] for call in ops.calls] == ["systemctl"] * 3
    assert 'HANGAR_AGENT_EXEC="/usr/local/bin/scan --v2"' in layout.env_path.read_text()


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (FakeOps(root=False), "run it as root"),
        (FakeOps(booted=False), "systemd is not running"),
        (FakeOps(unreachable=Path("/root")), "user hangar could not run .*: /root is not accessible"),
    ],
)
def test_system_service_checks_before_changing_anything(tmp_path: Path, ops: FakeOps, message: str) -> None:
    layout = layout_in(tmp_path, "system")
    source = write_runner_config(tmp_path / "agent.json")
    with pytest.raises(ServiceError, match=message):
        install_system_service("scan", 30, source, layout=layout, ops=ops)
    assert ops.calls == [] and source.exists() and not layout.settings_dir.exists()


def test_system_service_needs_a_registered_runner(tmp_path: Path) -> None:
    layout = layout_in(tmp_path, "system")
    with pytest.raises(ServiceError, match="register first"):
        install_system_service("scan", 30, tmp_path / "none.json", layout=layout, ops=FakeOps())


# --------------------------------------------------------------------------- the command line


def test_install_service_print_shows_the_unit_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = cli(["install-service", "--user", "--print", "--grace", "10"], tmp_path / "agent.json", HOME=str(home))
    assert result.returncode == 0, result.stderr
    assert "TimeoutStopSec=55" in result.stdout.splitlines()
    assert "KillMode=mixed" in result.stdout.splitlines()
    assert list(home.iterdir()) == []
    missing_mode = cli(["install-service", "--exec", "x"], tmp_path / "agent.json")
    assert missing_mode.returncode == 2 and "--system" in missing_mode.stderr


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd is running: this would reach it")
def test_install_service_without_systemd_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_runner_config(home / ".config" / "hangar" / "agent.json")
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    result = cli(
        ["install-service", "--user", "--exec", "scan"], config, HOME=str(home), XDG_RUNTIME_DIR=str(tmp_path / "no")
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach your systemd user manager"), result.stderr
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    if os.geteuid() == 0:
        system = cli(["install-service", "--system", "--exec", "scan"], config, HOME=str(home))
        assert system.returncode == 1 and "systemd is not running" in system.stderr
