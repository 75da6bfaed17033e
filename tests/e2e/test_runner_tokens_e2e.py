"""Runner tokens over real HTTP against local/: revocation despite the authorizer cache, setup-info, and
the install script actually run with `sh` (it pip-installs the agent from the repository's agent/)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import REPO_ROOT
from local.testing import LocalApi, start_local_api, unique_org

AGENT_DIR = REPO_ROOT / "agent"


def create_runner(api: LocalApi, org: str, name: str = "e2e-runner") -> tuple[str, dict[str, Any]]:
    jwt = api.jwt(org, "runners:read runners:manage")
    status, _, body = api.call("POST", "/api/runners", token=jwt, json={"name": name, "labels": ["linux"]})
    assert status == 201, body
    return jwt, body["data"]


def test_regenerated_token_is_refused_at_once_despite_the_authorizer_cache(local_api: LocalApi, org: str) -> None:
    jwt, runner = create_runner(local_api, org)
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
    jwt, runner = create_runner(local_api, org)
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
    jwt, runner = create_runner(local_api, org)
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
    """local/ with the install script pointing pip at this repository's agent/ (AgentPackageSpec)."""
    api = start_local_api(extra_env={"HANGAR_PARAM_AgentPackageSpec": str(AGENT_DIR)}, timeout=60)
    try:
        yield api
    finally:
        api.stop()


@pytest.mark.slow
def test_install_script_installs_the_agent_and_writes_a_private_config(install_api: LocalApi, tmp_path: Path) -> None:
    org = unique_org()
    jwt, runner = create_runner(install_api, org, name="it's the e2e runner")
    status, _, info = install_api.call("GET", f"/api/runners/{runner['_id']}/setup-info", token=jwt)
    assert status == 200, info
    command = info["data"]["installCommand"]
    status, _, script = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={runner['token']}")
    assert status == 200
    if f"HANGAR_AGENT_PACKAGE={AGENT_DIR}" not in script:
        pytest.skip("local/ did not apply HANGAR_PARAM_AgentPackageSpec: the script would install from PyPI")

    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The script must find a Python 3.11+ as `python3` on PATH by itself.
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    # Exactly what setup-info tells the user to run: curl ... | sh
    result = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert runner["token"] not in result.stdout + result.stderr  # never printed

    config_path = home / ".config" / "hangar" / "agent.json"
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
    agent = home / ".local" / "share" / "hangar-agent" / "venv" / "bin" / "hangar-agent"
    assert f"{agent} run --exec" in result.stdout

    # The installed agent reads that config and comes online.
    status_out = subprocess.run([str(agent), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status_out.returncode == 0 and runner["_id"] in status_out.stdout, status_out.stderr
    process = subprocess.Popen(
        [str(agent), "run", "--exec", "true"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        seen = None
        while time.monotonic() < deadline:
            status, _, body = install_api.call("GET", f"/api/runners/{runner['_id']}", token=jwt)
            seen = body
            if status == 200 and body["data"]["status"] == "online":
                break
            time.sleep(0.5)
        assert seen and seen["data"]["status"] == "online", seen
        assert seen["data"]["version"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # The first heartbeat erased the kept plaintext: setup-info now says to regenerate.
    status, _, info = install_api.call("GET", f"/api/runners/{runner['_id']}/setup-info", token=jwt)
    assert status == 200 and info["data"]["token"] is None and info["data"]["hint"]
    # Running the script again (e.g. to upgrade) works on top of the existing install.
    rerun = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


def test_install_script_needs_a_valid_token(install_api: LocalApi) -> None:
    org = unique_org()
    _, runner = create_runner(install_api, org)
    status, headers, body = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token=hgr_bogus")
    assert status == 401 and "hgr_bogus" not in json.dumps(body)
    assert headers["Content-Type"] == "application/json"
    status, _, _ = install_api.call("GET", f"/api/runners/{runner['_id']}/setup")
    assert status == 401
    # A real token of another runner: 404 (no script for a runner this token is not for).
    _, other = create_runner(install_api, unique_org())
    status, _, body = install_api.call("GET", f"/api/runners/{runner['_id']}/setup?token={other['token']}")
    assert status == 404, body
