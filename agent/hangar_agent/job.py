"""Running one job's COMMAND in its own process group and turning the outcome into a status report."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

KILL_GRACE_SECONDS = 5.0
STDOUT_TAIL_BYTES = 16 * 1024
STDERR_TAIL_BYTES = 2 * 1024
MAX_STDOUT_BYTES = 64 * 1024 * 1024
PIPE_DRAIN_SECONDS = 5.0
_POLL_SECONDS = 0.1

CANCELLED = "cancelled"
TIMEOUT = "timeout"
SHUTDOWN = "agent shutdown"


@dataclass(frozen=True)
class Outcome:
    """What to report for a finished job: ``status`` is "completed" or "failed"."""

    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int | None = None

    def report_body(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"jobId": job_id, "status": self.status}
        if self.result is not None:
            body["result"] = self.result
        if self.error is not None:
            body["error"] = self.error
        return body


def _tail_text(data: bytes, limit: int) -> str:
    if len(data) > limit:
        data = data[-limit:]
    return data.decode("utf-8", errors="replace")


def outcome_from_exit(
    returncode: int, stdout: bytes, stderr: bytes, *, stdout_truncated: bool = False
) -> Outcome:
    """Map a finished process to an Outcome, following the COMMAND contract."""
    if returncode == 0:
        parsed: Any = None
        if not stdout_truncated:
            try:
                parsed = json.loads(stdout.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                parsed = None
        if isinstance(parsed, dict):
            return Outcome(status="completed", result=parsed, exit_code=0)
        return Outcome(
            status="completed", result={"output": _tail_text(stdout, STDOUT_TAIL_BYTES)}, exit_code=0
        )
    if returncode < 0:
        try:
            what = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"killed by signal {-returncode}"
    else:
        what = f"exit status {returncode}"
    tail = _tail_text(stderr, STDERR_TAIL_BYTES).strip()
    return Outcome(status="failed", error=f"{what}: {tail}" if tail else what, exit_code=returncode)


def kill_process_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the job's process group, then SIGKILL whatever is left after ``grace`` seconds."""
    pgid = proc.pid  # started with start_new_session=True, so pgid == pid

    def _signal_group(sig: signal.Signals) -> bool:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        return True

    if not _signal_group(signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_POLL_SECONDS)
        if proc.returncode is not None and not _group_alive(pgid):
            return
        if proc.returncode is not None:
            time.sleep(_POLL_SECONDS)
    _signal_group(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def _group_alive(pgid: int) -> bool:
    """True while the process group has a live (non-zombie) member.

    Zombies count as members for ``killpg``, and in containers whose PID 1 does not reap orphans
    they linger forever, so on Linux the group is checked in /proc as well.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


class _Reader(threading.Thread):
    """Drain a pipe, keeping everything (stdout, bounded) or only a tail (stderr), and handing every block
    read to ``sink`` (the job's log stream), which must not block."""

    def __init__(
        self, stream: IO[bytes], *, keep_all: bool, tail: int, sink: Callable[[bytes], None] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._keep_all = keep_all
        self._tail = tail
        self._sink = sink
        self._chunks = bytearray()
        self.truncated = False

    def run(self) -> None:
        try:
            while True:
                chunk = (
                    self._stream.read1(65536) if hasattr(self._stream, "read1") else self._stream.read(65536)
                )
                if not chunk:
                    break
                if self._sink is not None:
                    try:
                        self._sink(chunk)
                    except Exception:  # the log stream broke: the pipe must be drained regardless
                        self._sink = None
                self._chunks += chunk
                limit = MAX_STDOUT_BYTES if self._keep_all else self._tail
                if len(self._chunks) > limit:
                    # Keep a tail only; a truncated stdout can no longer be parsed as JSON.
                    self.truncated = True
                    keep = self._tail if self._keep_all else limit
                    del self._chunks[: len(self._chunks) - keep]
                    self._keep_all = False
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self._stream.close()

    @property
    def data(self) -> bytes:
        return bytes(self._chunks)


class JobProcess:
    """One job's COMMAND: started with the job JSON on stdin, killable as a process group."""

    def __init__(
        self, command: str, job: dict[str, Any], job_id: str, *, extra_env: dict[str, str] | None = None
    ):
        self.command = command
        self.job = job
        self.job_id = job_id
        self._extra_env = extra_env or {}
        self._kill_reason: str | None = None
        self._kill_requested = threading.Event()
        self._lock = threading.Lock()
        self._finished = False

    @property
    def kill_reason(self) -> str | None:
        with self._lock:
            return self._kill_reason

    def request_kill(self, reason: str) -> bool:
        """Ask the running process to be killed; the first reason wins. Returns True if newly requested."""
        with self._lock:
            if self._kill_reason is not None or self._finished:
                return False
            self._kill_reason = reason
        self._kill_requested.set()
        return True

    def run(
        self,
        timeout: float | None,
        *,
        env: dict[str, str] | None = None,
        stderr_sink: Callable[[bytes], None] | None = None,
    ) -> Outcome:
        """Run to completion (or kill). Blocks; call from the job's own thread. ``env`` is added to the
        command's environment; ``stderr_sink`` gets the command's stderr as it is read."""
        try:
            return self._run(timeout, env or {}, stderr_sink)
        finally:
            with self._lock:
                self._finished = True

    def _run(
        self, timeout: float | None, extra_env: dict[str, str], stderr_sink: Callable[[bytes], None] | None
    ) -> Outcome:
        env = dict(os.environ)
        env.update(self._extra_env)
        env.update(extra_env)
        env["HANGAR_JOB_ID"] = self.job_id
        stdin_data = json.dumps(self.job).encode()
        if self._kill_requested.is_set():
            return Outcome(status="failed", error=self.kill_reason or "killed")
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return Outcome(status="failed", error=f"cannot start command: {exc.strerror or exc}")
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPEs given
            kill_process_group(proc)
            return Outcome(status="failed", error="cannot start command: no pipes")
        out_reader = _Reader(proc.stdout, keep_all=True, tail=STDOUT_TAIL_BYTES)
        err_reader = _Reader(proc.stderr, keep_all=False, tail=STDERR_TAIL_BYTES, sink=stderr_sink)
        out_reader.start()
        err_reader.start()
        writer = threading.Thread(target=_write_stdin, args=(proc.stdin, stdin_data), daemon=True)
        writer.start()

        deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
        exited = False
        while True:
            try:
                proc.wait(timeout=_POLL_SECONDS)
                exited = True
                break
            except subprocess.TimeoutExpired:
                pass
            if self._kill_requested.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.request_kill(TIMEOUT)
                break

        if not exited:
            kill_process_group(proc)
        else:
            # The command exited; give pipes a moment, then reap stragglers that still hold them open.
            _join_all([out_reader, err_reader], PIPE_DRAIN_SECONDS)
            if out_reader.is_alive() or err_reader.is_alive():
                kill_process_group(proc, grace=1.0)
        _join_all([out_reader, err_reader], PIPE_DRAIN_SECONDS)
        writer.join(1.0)
        if proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)

        reason = self.kill_reason
        if not exited:
            return Outcome(status="failed", error=reason or "killed", exit_code=proc.returncode)
        outcome = outcome_from_exit(
            proc.returncode if proc.returncode is not None else -1,
            out_reader.data,
            err_reader.data,
            stdout_truncated=out_reader.truncated,
        )
        if reason == CANCELLED:
            # A cancelled job must never be reported completed, even if it just managed to finish.
            return Outcome(status="failed", error=CANCELLED, exit_code=outcome.exit_code)
        return outcome


def _join_all(threads: list[_Reader], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _write_stdin(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
        stream.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()
