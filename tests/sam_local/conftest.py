"""`make test-sam-local`: the stack under `sam local`, in Docker, against make run's embedded backend.

Collected only when HANGAR_SAM_LOCAL=1 (the Makefile target sets it, after building the template for
arm64 into .aws-sam/build and an x86_64 copy into .tools/sam-local/build-x86_64): it needs root,
Debian's docker.io and minutes, none of which `make test` may assume.

Session fixtures, each once per run: the Docker daemon; the base images (x86_64 first; arm64, when
qemu-user-static can run it, built in the background while the x86_64 tests run); one
`python -m tools.sam_local serve` (what `make sam-local` runs: the embedded backend on the docker
bridge, make run's API, and `sam local start-api` on the x86_64 build); and data created through
make run's API, whose ids and credentials fill in the events/ fixtures. What the tests share besides
fixtures is in sam_harness.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sam_harness import (
    ARM64_TEMPLATE,
    ORG,
    ROOT,
    STATE_DIR,
    X86_64_TEMPLATE,
    Background,
    Fleet,
    Stack,
    call,
    fixture_body,
    free_port,
    report,
)

if os.environ.get("HANGAR_SAM_LOCAL") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def docker() -> Iterator[Any]:
    from docker_engine import docker_daemon

    started = time.monotonic()
    with docker_daemon(STATE_DIR) as engine:
        report("Docker ready", started)
        yield engine


@pytest.fixture(scope="session")
def arm64_unavailable() -> str | None:
    """Why arm64 cannot run here (None: it can, through qemu-user-static)."""
    from docker_engine import arm64_emulation

    reason = arm64_emulation()
    print(f"sam-local: arm64 emulation: {reason or 'available'}", flush=True)
    return reason


@pytest.fixture(scope="session")
def x86_64_image(docker: Any) -> str:
    from base_images import ensure_base_image

    started = time.monotonic()
    image = ensure_base_image(docker, "x86_64", STATE_DIR)
    report("base image x86_64", started)
    return image


@pytest.fixture(scope="session")
def arm64_image(docker: Any, x86_64_image: str, arm64_unavailable: str | None) -> Iterator[Background | None]:
    """Started once the x86_64 image is there, built while the x86_64 tests run; None without emulation."""
    from base_images import ensure_base_image

    if arm64_unavailable:
        yield None
        return
    building = Background("base image arm64", lambda: ensure_base_image(docker, "arm64", STATE_DIR))
    yield building
    building.result()  # never leave a build running into the daemon's shutdown


@pytest.fixture(scope="session")
def stack(docker: Any, x86_64_image: str, arm64_image: Background | None) -> Iterator[Stack]:
    from tools.sam_local import env_vars_for_port, stop_process

    if not X86_64_TEMPLATE.exists() or not ARM64_TEMPLATE.exists():
        pytest.fail("run through `make test-sam-local`: it builds both templates first")
    backend_port = free_port()
    env_file = Path(tempfile.mkstemp(prefix="sam-env-", suffix=".json", dir=STATE_DIR)[1])
    env_file.write_text(json.dumps(env_vars_for_port(backend_port)))
    command = [
        sys.executable, "-m", "tools.sam_local", "serve",
        "--template", str(X86_64_TEMPLATE), "--port", str(free_port()), "--api-port", str(free_port()),
        "--no-schedules", "--", "--skip-pull-image",
    ]  # fmt: skip
    env = {**os.environ, "DOCKER_HOST": docker.host, "HANGAR_BACKEND_PORT": str(backend_port), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    running = Stack(process, docker.host, backend_port, env_file)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        if not running.both_ready.wait(600) or not (running.api_url and running.sam_url):
            pytest.fail("tools.sam_local serve did not start:\n" + "\n".join(running.lines[-50:]))
        report("make sam-local ready (backend, make run's API, sam local start-api)", started)
        yield running
    finally:
        stop_process(process, timeout=60)
        env_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def fleet(stack: Stack) -> Fleet:
    """Two runners, a target and a job of org demo, created through make run's API (the fixtures' bodies)."""
    from local.devtokens import ALL_SCOPES, mint_dev_jwt

    jwt = mint_dev_jwt(ORG, ALL_SCOPES, sub=f"dev@{ORG}", ttl=3600)
    auth = {"Authorization": f"Bearer {jwt}"}

    def create(path: str, body: Any) -> Any:
        result = call(stack.api_url, "POST", path, headers=auth, json=body)
        assert result.status == 201, (path, result.status, result.body)
        return result.body

    # Two runners: more than the free plan allows (the fixture moves org demo to team).
    team = call(stack.api_url, "PUT", f"/v1/orgs/{ORG}/license", headers=auth, json=fixture_body("PutOrgLicense"))
    assert team.status == 200, team.body
    runner = create("/api/runners", fixture_body("CreateRunner"))["data"]
    stale = create("/api/runners", {**fixture_body("CreateRunner"), "name": "goes-silent"})["data"]
    target = create("/v1/targets", fixture_body("CreateTarget"))
    job = create("/v1/jobs", fixture_body("CreateJob"))
    return Fleet(
        jwt=jwt,
        runner_id=runner["_id"],
        runner_token=runner["token"],
        token_prefix=runner["tokenPrefix"],
        stale_runner_id=stale["_id"],
        stale_runner_token=stale["token"],
        stale_token_prefix=stale["tokenPrefix"],
        target_id=target["id"],
        job_id=job["id"],
    )
