"""Runner tokens over real HTTP against local/: revocation despite the authorizer cache, setup-info, and
the install script actually run with `sh`, exactly as `make run` serves it (no parameter set: it carries
the agent wheel built from this checkout), into a temporary HOME."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from http_builders import create_runner
from support import ensure_agent_wheel

from local.testing import LocalApi, start_local_api, unique_org


def runner_and_jwt(api: LocalApi, org: str, name: str = "e2e-runner") -> tuple[str, dict[str, Any]]:
    """(the runners:read/manage JWT of the user who created it, a new linux runner of `org`)."""
    jwt = api.jwt(org, "runners:read runners:manage")
    return jwt, create_runner(api, org, name, ["linux"], token=jwt)


def test_regenerated_token_is_refused_at_once_despite_the_authorizer_cache(local_api: LocalApi, org: str) -> None:
    jwt, runner = runner_and_jwt(local_api, org)
    old = runner["token"]
    # The first heartbeat puts the old token's Allow in the authorizer cache (ReauthorizeEvery 300).
    status, _, body = local_api.call("POST", "/api/runners/heartbeat", runner_token=old, json={"status": "online"})
    assert status == 200, body

    status, _, regenerated = local_api.call("POST", f"/api/runners/{runner['_id']}/regenerate-token", token=jwt)
    assert status == 200, regenerated
    new = regenerated["data"]["token"]
    assert new != old and regenerated["data"]["_id"] == runner["_id"]

    status, headers, body = local_api.call(
        "POST", "/api/runners/heartbeat", runner_token=old, json={"status": "online"}
    )
    assert status == 401, body
    assert headers["x-amzn-ErrorType"] is None  # the handler refused it: the cached Allow did let it through
    assert body["error"]["code"] == "token_regenerated", body
    # An empty poll too, on its next call (it used to answer {"job": null} until the cache expired).
    status, headers, body = local_api.call("POST", "/api/runners/jobs", runner_token=old, json={})
    assert status == 401 and body["error"]["code"] == "token_regenerated", body
    assert headers["x-amzn-ErrorType"] is None
    status, _, body = local_api.call(
        "POST", "/api/runners/jobs/status", runner_token=old, json={"jobId": "job_x", "status": "running"}
    )
    assert status == 401 and body["error"]["code"] == "token_regenerated", body
    status, _, body = local_api.call("POST", "/api/runners/heartbeat", runner_token=new, json={"status": "busy"})
    assert status == 200 and body["data"]["status"] == "busy", body
    # The old token no longer fetches the install script either; the new one does.
    status, _, _ = local_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={old}")
    assert status == 401
    status, headers, script = local_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={new}")
    assert status == 200 and headers["Content-Type"] == "text/x-shellscript" and new in script


def test_a_deleted_runners_token_is_refused_at_once_on_every_runner_route(local_api: LocalApi, org: str) -> None:
    jwt, runner = runner_and_jwt(local_api, org)
    token = runner["token"]
    status, _, body = local_api.call("POST", "/api/runners/heartbeat", runner_token=token, json={"status": "online"})
    assert status == 200, body
    status, _, body = local_api.call("DELETE", f"/api/runners/{runner['_id']}", token=jwt)
    assert status == 200, body
    for path, payload in [
        ("/api/runners/heartbeat", {"status": "online"}),
        ("/api/runners/jobs", {}),
        ("/api/runners/jobs/status", {"jobId": "job_x", "status": "running"}),
    ]:
        status, headers, body = local_api.call("POST", path, runner_token=token, json=payload)
        assert status == 401 and body["error"]["code"] == "runner_deleted", (path, body)
        assert headers["x-amzn-ErrorType"] is None  # refused by the handler behind the cached Allow


def test_regenerate_limit_and_setup_info_over_http(local_api: LocalApi, org: str) -> None:
    jwt, runner = runner_and_jwt(local_api, org)
    path = f"/api/runners/{runner['_id']}"
    status, _, info = local_api.call("GET", f"{path}/setup-info", token=jwt)
    assert status == 200 and info["data"]["token"] == runner["token"], info
    assert info["data"]["apiUrl"] == local_api.url
    for _ in range(5):
        status, _, body = local_api.call("POST", f"{path}/regenerate-token", token=jwt)
        assert status == 200, body
    status, headers, body = local_api.call("POST", f"{path}/regenerate-token", token=jwt)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert 0 < int(headers["Retry-After"]) <= 3600
    # Another tenant sees nothing.
    other = local_api.jwt(unique_org(), "runners:manage")
    status, _, _ = local_api.call("GET", f"{path}/setup-info", token=other)
    assert status == 404


@pytest.fixture(scope="module")
def install_api() -> Iterator[LocalApi]:
    """local/ exactly as `make run` serves it: no AgentPackageSpec, so the install script carries the agent
    wheel built from this checkout (`make agent-wheel`)."""
    ensure_agent_wheel()
    api = start_local_api(timeout=60)
    try:
        yield api
    finally:
        api.stop()


@dataclass
class Machine:
    """A runner machine: an empty HOME, a PATH whose `python3` is a 3.11+, fake systemd tools when asked."""

    home: Path
    env: dict[str, str]
    calls: Path  # what the fake systemctl / loginctl were asked to do

    def run(self, command: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command, "sh", *args], env={**self.env, **extra}, capture_output=True, text=True, timeout=600
        )

    def contents(self) -> list[str]:
        return sorted(str(path.relative_to(self.home)) for path in self.home.rglob("*"))


def machine(tmp_path: Path, *, fake_systemd: bool = False) -> Machine:
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "tmp").mkdir()
    # The script must find a Python 3.11+ as `python3` on PATH by itself.
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    calls = tmp_path / "systemd-calls"
    if fake_systemd:
        for tool in ("systemctl", "loginctl"):
            fake = bin_dir / tool
            fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> {shlex.quote(str(calls))}\n')
            fake.chmod(0o755)
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path / "tmp"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return Machine(home=home, env=env, calls=calls)


def install_command(api: LocalApi, jwt: str, runner_id: str) -> str:
    status, _, info = api.call("GET", f"/api/runners/{runner_id}/setup-info", token=jwt)
    assert status == 200, info
    command: str = info["data"]["installCommand"]
    return command


def wait_online(api: LocalApi, jwt: str, runner_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, _, body = api.call("GET", f"/api/runners/{runner_id}", token=jwt)
        seen = body
        if status == 200 and body["data"]["status"] == "online":
            return seen
        time.sleep(0.5)
    raise AssertionError(f"runner {runner_id} never came online: {seen}")


@contextlib.contextmanager
def running_agent(agent: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [str(agent), "run", "--exec", "true", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
def test_install_script_installs_the_agent_and_writes_a_private_config(install_api: LocalApi, tmp_path: Path) -> None:
    org = unique_org()
    jwt, runner = runner_and_jwt(install_api, org, name="it's the e2e runner")
    command = install_command(install_api, jwt, runner["_id"])
    status, _, script = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={runner['token']}")
    assert status == 200
    assert "\nHANGAR_AGENT_PACKAGE=''\n" in script  # no parameter set: the stack's own agent, inline

    box = machine(tmp_path)
    # Exactly what setup-info tells the user to run: curl ... | sh
    result = box.run(command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert runner["token"] not in result.stdout + result.stderr  # never printed
    assert os.listdir(box.env["TMPDIR"]) == []  # the unpacked wheel is gone

    config_path = box.home / ".config" / "hangar" / "agent.json"
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_path.parent.stat().st_mode) == 0o700
    config = json.loads(config_path.read_text())
    assert config == {
        "apiUrl": install_api.url,
        "runnerId": runner["_id"],
        "token": runner["token"],
        "tokenPrefix": runner["tokenPrefix"],
        "name": "it's the e2e runner",
        "labels": ["linux"],
        "configuredConcurrency": 1,
    }
    agent = box.home / ".local" / "share" / "hangar-agent" / "venv" / "bin" / "hangar-agent"
    assert f"{agent} run --exec" in result.stdout
    assert f"{agent} install-service --user --exec" in result.stdout

    # The installed agent reads that config; the server has not heard from it yet.
    status_out = subprocess.run([str(agent), "status"], env=box.env, capture_output=True, text=True, timeout=60)
    assert status_out.returncode == 0, status_out.stderr
    assert runner["_id"] in status_out.stdout and "Status:       offline" in status_out.stdout
    with running_agent(agent, box.env):
        seen = wait_online(install_api, jwt, runner["_id"])
        assert seen["data"]["version"]
        status_out = subprocess.run([str(agent), "status"], env=box.env, capture_output=True, text=True, timeout=60)
        assert "Status:       online (as the server sees it)" in status_out.stdout, status_out.stdout
    # The first heartbeat erased the kept plaintext: setup-info now says to regenerate.
    status, _, info = install_api.call("GET", f"/api/runners/{runner['_id']}/setup-info", token=jwt)
    assert status == 200 and info["data"]["token"] is None and info["data"]["hint"]
    # Running the script again (e.g. to upgrade) works on top of the existing install.
    rerun = box.run(command)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600

    # The installed agent also registers a new runner with an enrollment token kept out of its argv.
    operator = install_api.jwt(org, "admin:licenses")
    assert install_api.call("PUT", f"/v1/orgs/{org}/license", token=operator, json={"plan": "team"}).status == 200
    status, _, enrollment = install_api.call("POST", "/v1/runners/enrollment-tokens", token=jwt, json={})
    assert status == 201, enrollment
    token_file = tmp_path / "enrollment-token"
    token_file.write_text(enrollment["token"] + "\n")
    second = tmp_path / "second.json"
    register = ["register", "--api-url", install_api.url, "--token-file", str(token_file), "--config", str(second)]
    registered = subprocess.run(
        [str(agent), *register],
        env=box.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert registered.returncode == 0, registered.stderr
    second_id = json.loads(second.read_text())["runnerId"]
    with running_agent(agent, box.env, "--config", str(second)):
        wait_online(install_api, jwt, second_id)


@pytest.mark.slow
def test_a_failed_install_leaves_nothing_behind(install_api: LocalApi, tmp_path: Path) -> None:
    jwt, runner = runner_and_jwt(install_api, unique_org())
    box = machine(tmp_path)
    # pip refuses: this machine's pip configuration pins another version of the agent.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("hangar-agent==0.0.0\n")
    result = box.run(install_command(install_api, jwt, runner["_id"]), PIP_CONSTRAINT=str(constraints))
    assert result.returncode != 0
    assert "hangar: error: could not install the agent package (hangar_agent-" in result.stderr, result.stderr
    assert "what it had created is removed" in result.stderr
    assert box.contents() == []  # no venv, no ~/.local, no ~/.config
    assert os.listdir(box.env["TMPDIR"]) == []


@pytest.mark.slow
def test_a_failed_reinstall_keeps_the_working_install(install_api: LocalApi, tmp_path: Path) -> None:
    jwt, runner = runner_and_jwt(install_api, unique_org())
    box = machine(tmp_path)
    command = install_command(install_api, jwt, runner["_id"])
    assert box.run(command).returncode == 0
    before = box.contents()
    config = (box.home / ".config" / "hangar" / "agent.json").read_text()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("hangar-agent==0.0.0\n")
    failed = box.run(command, PIP_CONSTRAINT=str(constraints))
    assert failed.returncode != 0
    assert box.contents() == before
    assert (box.home / ".config" / "hangar" / "agent.json").read_text() == config
    agent = box.home / ".local" / "share" / "hangar-agent" / "venv" / "bin" / "hangar-agent"
    still = subprocess.run([str(agent), "status", "--offline"], env=box.env, capture_output=True, text=True)
    assert still.returncode == 0 and runner["_id"] in still.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (make test installs it)")
def test_install_script_with_exec_installs_the_agents_own_unit_as_a_user_service(
    install_api: LocalApi, tmp_path: Path
) -> None:
    jwt, runner = runner_and_jwt(install_api, unique_org())
    box = machine(tmp_path, fake_systemd=True)
    command = install_command(install_api, jwt, runner["_id"]).replace("| sh", '| sh -s -- --exec "$1"')
    result = box.run(command, "/usr/local/bin/scan --format sarif")
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.calls.read_text().splitlines() == [
        "systemctl --user show-environment",
        "systemctl --user daemon-reload",
        "systemctl --user enable hangar-agent.service",
        "systemctl --user restart hangar-agent.service",
        f"loginctl enable-linger {pwd.getpwuid(os.getuid()).pw_name}",
    ]
    agent = box.home / ".local" / "share" / "hangar-agent" / "venv" / "bin" / "hangar-agent"
    unit = box.home / ".config" / "systemd" / "user" / "hangar-agent.service"
    settings = box.home / ".config" / "hangar" / "agent.env"
    # The same unit the agent ships (one source of truth), pointing at the venv the script made.
    printed = subprocess.run(
        [str(agent), "install-service", "--user", "--print"], env=box.env, capture_output=True, text=True, check=True
    )
    assert unit.read_text() == printed.stdout
    assert f"ExecStart={agent} run" in unit.read_text().splitlines()
    assert 'HANGAR_AGENT_EXEC="/usr/local/bin/scan --format sarif"' in settings.read_text().splitlines()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    verify = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stdout + verify.stderr


def test_install_script_needs_a_valid_token(install_api: LocalApi) -> None:
    org = unique_org()
    _, runner = runner_and_jwt(install_api, org)
    status, headers, body = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token=hgr_bogus")
    assert status == 401 and "hgr_bogus" not in json.dumps(body)
    assert headers["Content-Type"] == "application/json"
    status, _, _ = install_api.call("GET", f"/api/runners/{runner['_id']}/setup")
    assert status == 401
    # A real token of another runner: 404 (no script for a runner this token is not for).
    _, other = runner_and_jwt(install_api, unique_org())
    status, _, body = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={other['token']}")
    assert status == 404, body


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="--system installs as root")
@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs: this would install a service")
def test_system_install_puts_the_agent_where_every_user_can_run_it(install_api: LocalApi, tmp_path: Path) -> None:
    """--system with its locations moved under tmp_path (HANGAR_AGENT_HOME, HANGAR_AGENT_CONFIG); without
    systemd the service step fails, and then everything the script created is removed."""
    jwt, runner = runner_and_jwt(install_api, unique_org())
    box = machine(tmp_path)
    places = {
        "HANGAR_AGENT_HOME": str(tmp_path / "opt" / "hangar-agent"),
        "HANGAR_AGENT_CONFIG": str(tmp_path / "etc" / "hangar" / "agent.json"),
    }
    command = install_command(install_api, jwt, runner["_id"])
    with_service = box.run(command.replace("| sh", '| sh -s -- --system --exec "$1"'), "/usr/local/bin/scan", **places)
    assert with_service.returncode != 0
    assert "error: systemd is not running on this machine" in with_service.stderr, with_service.stderr
    assert "could not install the service" in with_service.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()

    plain = box.run(command.replace("| sh", "| sh -s -- --system"), **places)
    assert plain.returncode == 0, plain.stderr
    agent = tmp_path / "opt" / "hangar-agent" / "venv" / "bin" / "hangar-agent"
    config = tmp_path / "etc" / "hangar" / "agent.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and json.loads(config.read_text())["runnerId"] == runner["_id"]
    assert f"{agent} install-service --system --exec '<your command>'" in plain.stdout
    assert box.contents() == []  # nothing in the invoking user's HOME
