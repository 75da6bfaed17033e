"""Docker Engine for `make test-sam-local`: a dockerd of its own (or the machine's), the docker CLI, and
arm64 emulation through qemu-user-static (binfmt_misc).

The daemon runs with `--userland-proxy=false`: with the userland proxy a published port accepts a
connection before the container's emulator listens, and SAM's short retry on the first invoke
gives up on the reset connection. Published ports then go through iptables on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.sam_local import stop_process

DOCKER_CLI = "/usr/bin/docker"  # Debian's docker.io (the Makefile installs it), not another docker on PATH
MACHINE_SOCKET = Path("/var/run/docker.sock")
# Short paths: unix socket names are limited to 108 bytes, and containerd puts its sockets under exec-root.
RUN_DIR = Path("/run/hangar-sam-local")
# One docker0 bridge per machine: test runs from other checkouts wait for this one.
LOCK_FILE = Path("/run/lock/hangar-sam-local.lock")
BINFMT = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Docker:
    host: str  # DOCKER_HOST, unix:///...

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def run(self, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOCKER_CLI, *args], env=self.env(), capture_output=True, text=True, check=check, timeout=timeout
        )

    def image_label(self, image: str, label: str) -> str | None:
        """A label of a local image; None when the image is not there."""
        result = self.run("image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', image, check=False)
        return result.stdout.strip() if result.returncode == 0 else None


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    result = subprocess.run(
        [DOCKER_CLI, "-H", f"unix://{socket_path}", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.returncode == 0


@contextlib.contextmanager
def docker_daemon(state_dir: Path, log: Sequence[str] = ()) -> Iterator[Docker]:
    """The machine's Docker if one answers; otherwise a dockerd of our own, stopped on exit.

    Its images (the base images, SAM's function images) live in `state_dir`, so they outlast the run."""
    if _answers(MACHINE_SOCKET):
        print(f"sam-local: using the machine's Docker at {MACHINE_SOCKET}", flush=True)
        yield Docker(f"unix://{MACHINE_SOCKET}")
        return
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        socket_path = RUN_DIR / "docker.sock"
        command = [
            "dockerd",
            "--userland-proxy=false",
            f"--data-root={state_dir / 'docker'}",
            f"--exec-root={RUN_DIR / 'exec'}",
            f"--pidfile={RUN_DIR / 'dockerd.pid'}",
            f"--host=unix://{socket_path}",
            *log,
        ]
        with (state_dir / "dockerd.log").open("ab") as output:
            daemon = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        try:
            deadline = time.monotonic() + 90
            while not _answers(socket_path):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    tail = (state_dir / "dockerd.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"dockerd did not start (exit {daemon.poll()}); its log:\n{tail}")
                time.sleep(0.5)
            yield Docker(f"unix://{socket_path}")
        finally:
            stop_process(daemon, signal.SIGTERM, timeout=60)


def arm64_emulation() -> str | None:
    """Make arm64 binaries run through qemu-user-static; None when they do, else why they cannot.

    The binfmt entry needs the F flag (the interpreter opened when registered), so that it works
    inside containers, which have no qemu of their own."""
    if not (BINFMT / "status").exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True, check=False
        )
        if mounted.returncode != 0:
            return f"binfmt_misc cannot be mounted: {mounted.stderr.strip()}"
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        enabled = subprocess.run(
            ["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, text=True, check=False
        )
        if enabled.returncode != 0 or not entry.exists():
            return f"qemu-aarch64 cannot be registered: {(enabled.stderr or enabled.stdout).strip()}"
    flags = next((line.split(":", 1)[1] for line in entry.read_text().splitlines() if line.startswith("flags:")), "")
    if "F" not in flags:
        return f"qemu-aarch64 is registered without the F flag ({flags.strip()!r}): containers cannot use it"
    return None
