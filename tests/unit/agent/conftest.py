"""Fixtures of the agent's tests: the fake Hangar on a free port and the real agent in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_hangar import FakeHangar, serve
from harness import AGENT_DIR, JOB_SCRIPT, AgentProc, agent_env, write_config

# In-process tests import the agent from this checkout (as the subprocess tests run it).
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))


@pytest.fixture
def server() -> Iterator[FakeHangar]:
    yield from serve(FakeHangar())


@pytest.fixture
def start_agent(tmp_path: Path, server: FakeHangar) -> Iterator[Callable[..., AgentProc]]:
    started: list[AgentProc] = []
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)

    def start(
        *extra: str,
        concurrency: int = 1,
        exec_cmd: str | None = None,
        grace: float | None = None,
        env: dict[str, str] | None = None,
    ) -> AgentProc:
        config = write_config(tmp_path / f"agent{len(started)}.json", server, concurrency)
        command = exec_cmd or f"{sys.executable} {script}"
        args = [sys.executable, "-m", "hangar_agent", "run", "--exec", command, *extra]
        if grace is not None:
            args += ["--grace", str(grace)]
        log_path = tmp_path / f"agent{len(started)}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                args,
                env=agent_env(config, **(env or {})),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        agent = AgentProc(proc, log_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(5)
