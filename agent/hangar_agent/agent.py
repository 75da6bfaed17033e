"""The ``run`` loop: heartbeat, poll, execute jobs, report results, shut down gracefully."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hangar_agent import __version__, log
from hangar_agent.api import ApiClient, TokenRejectedError, backoff_delay, jittered
from hangar_agent.artifacts import ARTIFACTS_ENV
from hangar_agent.config import AgentConfig
from hangar_agent.job import CANCELLED, KILL_GRACE_SECONDS, SHUTDOWN, JobProcess, Outcome
from hangar_agent.logstream import DEFAULT_SPOOL_BYTES, LOG_REQUEST_SPACING_SECONDS, LogStream, RequestPacer
from hangar_agent.reports import JobReporter, short

HEARTBEAT_PATH = "/api/runners/heartbeat"
POLL_PATH = "/api/runners/jobs"

DEFAULT_HEARTBEAT_INTERVAL = 30.0
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_GRACE_SECONDS = 30.0
SHUTDOWN_REPORT_SECONDS = 15.0  # extra time, after the kill, to deliver the final reports at shutdown
# After the command exits, how long its log may take to reach the server before the final report goes
# anyway (a log chunk for a finished job would be refused). Shorter when the agent is shutting down.
LOG_FLUSH_SECONDS = 120.0  # a full spool (8 MiB) at the agent's log pace (about 85 KiB/s) takes ~100 s
SHUTDOWN_LOG_FLUSH_SECONDS = 5.0
OFFLINE_HEARTBEAT_SECONDS = 5.0  # at a clean stop, how long the final "offline" heartbeat may take
TOKEN_REJECTED_MESSAGE = "runner token rejected (regenerated or runner deleted)"  # noqa: S105
EXIT_OK = 0
EXIT_TOKEN_REJECTED = 2
_TICK = 0.2


def _interval(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value <= 0:
        return default
    return float(min(max(value, 0.05), 3600.0))


def system_info() -> dict[str, int | None]:
    """``{"cpu", "memory", "disk"}``: CPU count, total physical memory and free disk of the cwd (bytes)."""
    memory: int | None
    try:
        memory = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
        if memory <= 0:
            memory = None
    except (AttributeError, ValueError, OSError):
        memory = None
    disk: int | None
    try:
        disk = int(shutil.disk_usage(os.getcwd()).free)
    except OSError:
        disk = None
    return {"cpu": os.cpu_count(), "memory": memory, "disk": disk}


@dataclass
class _RunningJob:
    job_id: str
    process: JobProcess
    thread: threading.Thread | None = None


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        command: str,
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        client: ApiClient | None = None,
        log_spool_bytes: int = DEFAULT_SPOOL_BYTES,
    ) -> None:
        self.config = config
        self.command = command
        self.grace_seconds = max(0.0, grace_seconds)
        self.concurrency = max(1, config.configured_concurrency)
        self.client = client or ApiClient(config.api_url, config.token)
        self.log_spool_bytes = log_spool_bytes
        self._log_pacer = RequestPacer(LOG_REQUEST_SPACING_SECONDS)  # shared by every job's log stream
        self.heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL
        self.poll_interval = DEFAULT_POLL_INTERVAL

        self.stop_polling = threading.Event()  # SIGTERM/SIGINT or a fatal error: take no new jobs
        self.halt = threading.Event()  # everything is over: abort retries, stop heartbeats
        self.force = threading.Event()  # second signal: do not wait for the grace period
        self._fatal = threading.Event()
        self._exit_code = EXIT_OK
        self.reporter = JobReporter(self.client, self.halt)

        self._cond = threading.Condition()
        self._jobs: dict[str, _RunningJob] = {}
        self._threads: list[threading.Thread] = []
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()  # see _install_signal_handlers

    # ----------------------------------------------------------------- lifecycle

    def run(self) -> int:
        self._install_signal_handlers()
        log.info(
            "agent_started",
            version=__version__,
            runner=self.config.runner_id,
            api=self.config.api_url,
            token=self.config.token_prefix,
            concurrency=self.concurrency,
            grace=self.grace_seconds,
        )
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        heartbeat.start()
        poller.start()
        while not self.stop_polling.wait(_TICK):
            pass
        if self._fatal.is_set():
            self._abort_now()
        else:
            self._shutdown(poller)
        self.halt.set()
        heartbeat.join(1.0)
        if not self._fatal.is_set():
            self._say_offline()
        log.info("agent_stopped", exit_code=self._exit_code)
        return self._exit_code

    def request_shutdown(self, reason: str = "requested") -> None:
        if self.stop_polling.is_set():
            if not self.force.is_set():
                log.warning("shutdown_forced", reason=reason)
                self.force.set()
            return
        with self._cond:
            running = len(self._jobs)
        log.info("shutdown_requested", reason=reason, running=running, grace=self.grace_seconds)
        self.stop_polling.set()
        with self._cond:
            self._cond.notify_all()

    def _install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT start the shutdown (a second one forces it). The handler only queues the signal:
        Python runs it in the main thread between any two bytecodes, also while that thread holds a plain
        lock (an Event's, the log scrubber's), and taking that lock again from the handler would hang the
        agent for good. SimpleQueue.put is reentrant; a daemon thread does the shutdown request."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self._signals.put(signum)

        threading.Thread(target=self._signal_loop, name="signals", daemon=True).start()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _signal_loop(self) -> None:
        while True:
            self.request_shutdown(signal.Signals(self._signals.get()).name)

    def _token_rejected(self) -> None:
        if self._fatal.is_set():
            return
        self._fatal.set()
        self._exit_code = EXIT_TOKEN_REJECTED
        log.error("token_rejected", token=self.config.token_prefix, msg=TOKEN_REJECTED_MESSAGE)
        self.stop_polling.set()
        with self._cond:
            self._cond.notify_all()

    def _running_jobs(self) -> list[_RunningJob]:
        with self._cond:
            return list(self._jobs.values())

    def _wait_for_jobs(self, deadline: float, *, include_reports: bool) -> bool:
        """Wait until no job is left (or, with include_reports, every job thread ended). True if so."""
        while time.monotonic() < deadline and not self.force.is_set():
            if include_reports:
                alive = [t for t in self._threads if t.is_alive()]
                if not alive:
                    return True
            elif not self._running_jobs():
                return True
            time.sleep(_TICK / 2)
        if include_reports:
            return not any(t.is_alive() for t in self._threads)
        return not self._running_jobs()

    def _shutdown(self, poller: threading.Thread) -> None:
        start = time.monotonic()
        grace_deadline = start + self.grace_seconds
        poller.join(max(0.0, grace_deadline - time.monotonic()))
        if not self._wait_for_jobs(grace_deadline, include_reports=False):
            for running in self._running_jobs():
                if running.process.request_kill(SHUTDOWN):
                    log.warning("job_killed", job=running.job_id, reason=SHUTDOWN)
        self.force.clear()  # a forced stop skips the grace period, not the final reports
        final_deadline = time.monotonic() + KILL_GRACE_SECONDS + SHUTDOWN_REPORT_SECONDS
        if not self._wait_for_jobs(final_deadline, include_reports=True):
            log.warning("shutdown_reports_pending", jobs=[r.job_id for r in self._running_jobs()])

    def _abort_now(self) -> None:
        """Token rejected: nothing can be reported any more; kill everything and leave."""
        for running in self._running_jobs():
            running.process.request_kill(SHUTDOWN)
        self.halt.set()
        self._wait_for_jobs(time.monotonic() + KILL_GRACE_SECONDS + 2.0, include_reports=True)

    # ----------------------------------------------------------------- heartbeat

    def _heartbeat_loop(self) -> None:
        last_problem: str | None = None
        while not self.halt.is_set():
            with self._cond:
                busy = len(self._jobs) >= self.concurrency
            body: dict[str, Any] = {
                "status": "busy" if busy else "online",
                "version": __version__,
                "configuredConcurrency": self.concurrency,
                "systemInfo": system_info(),
            }
            try:
                resp = self.client.call(HEARTBEAT_PATH, body, kind="heartbeat", abort=self.halt)
            except TokenRejectedError:
                self._token_rejected()
                return
            if resp is None:
                return
            if resp.ok:
                last_problem = None
                data = resp.data()
                self.heartbeat_interval = _interval(
                    data.get("heartbeatIntervalSeconds"), self.heartbeat_interval
                )
                cancelled = data.get("cancelledJobs")
                if isinstance(cancelled, list):
                    self._cancel_jobs([str(job_id) for job_id in cancelled])
            else:
                problem = f"{resp.status}:{resp.error_code()}"
                if problem != last_problem:
                    log.warning(
                        "heartbeat_rejected",
                        status=resp.status,
                        code=resp.error_code(),
                        msg=resp.error_message(),
                    )
                    last_problem = problem
            self.halt.wait(jittered(self.heartbeat_interval))

    def _say_offline(self) -> None:
        """The last heartbeat of a clean stop: the runner reads offline at once, not online until it goes
        stale. Sent for at most 5 s, as a heartbeat (so a rate limit the heartbeats hit is honoured); if it
        does not get through in time, the server's stale cut-off does the same, so that is no warning."""
        body = {"status": "offline", "version": __version__, "configuredConcurrency": self.concurrency}
        deadline = time.monotonic() + OFFLINE_HEARTBEAT_SECONDS
        try:
            resp = self.client.call(
                HEARTBEAT_PATH,
                body,
                kind="heartbeat",
                abort=threading.Event(),
                deadline=deadline,
                timeout=OFFLINE_HEARTBEAT_SECONDS,
            )
        except TokenRejectedError:
            return
        if resp is None:
            log.info("offline_heartbeat_not_sent", reason="no answer in time: offline at the stale cut-off")
        elif resp.ok:
            log.info("runner_offline", runner=self.config.runner_id)
        else:
            log.warning("offline_heartbeat_failed", status=resp.status, code=resp.error_code())

    def _cancel_jobs(self, job_ids: list[str]) -> None:
        with self._cond:
            targets = [self._jobs[job_id] for job_id in job_ids if job_id in self._jobs]
        for running in targets:
            if running.process.request_kill(CANCELLED):
                log.info("job_cancel_requested", job=running.job_id)

    # ----------------------------------------------------------------- polling

    def _poll_loop(self) -> None:
        rejections = 0
        last_problem: str | None = None
        while not self.stop_polling.is_set():
            with self._cond:
                while len(self._jobs) >= self.concurrency and not self.stop_polling.is_set():
                    self._cond.wait(_TICK * 5)
            if self.stop_polling.is_set():
                return
            try:
                resp = self.client.call(POLL_PATH, {}, kind="poll", abort=self.stop_polling)
            except TokenRejectedError:
                self._token_rejected()
                return
            if resp is None:
                return
            if not resp.ok:
                problem = f"{resp.status}:{resp.error_code()}"
                if problem != last_problem:
                    log.warning(
                        "poll_rejected", status=resp.status, code=resp.error_code(), msg=resp.error_message()
                    )
                    last_problem = problem
                delay = max(self.poll_interval, backoff_delay(rejections))
                rejections += 1
                self.stop_polling.wait(delay)
                continue
            rejections = 0
            last_problem = None
            data = resp.data()
            self.poll_interval = _interval(data.get("pollIntervalSeconds"), self.poll_interval)
            job = data.get("job")
            if isinstance(job, dict):
                self._accept(job)
                continue  # a slot may still be free: poll again at once
            self.stop_polling.wait(jittered(self.poll_interval))

    def _accept(self, job: dict[str, Any]) -> None:
        raw_id = job.get("_id", job.get("id"))
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
            log.error("job_invalid", reason="missing _id", type=job.get("type"))
            return
        job_id = str(raw_id)
        with self._cond:
            if job_id in self._jobs:
                log.warning("job_duplicate", job=job_id)
                return
            running = _RunningJob(job_id=job_id, process=JobProcess(self.command, job, job_id))
            self._jobs[job_id] = running
            thread = threading.Thread(
                target=self._job_thread, args=(running, job), name=f"job-{job_id}", daemon=True
            )
            running.thread = thread
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        log.info(
            "job_received",
            job=job_id,
            type=job.get("type"),
            repo=job.get("repositoryName"),
            branch=job.get("branch"),
            attempt=job.get("attempts"),
        )
        thread.start()

    # ----------------------------------------------------------------- jobs

    def _job_thread(self, running: _RunningJob, job: dict[str, Any]) -> None:
        job_id = running.job_id
        try:
            if self.stop_polling.is_set():
                # Arrived while shutting down (the poll was already in flight): hand it back as failed.
                self.reporter.report_outcome(job_id, Outcome(status="failed", error=SHUTDOWN))
                return
            started = self.reporter.report(job_id, {"jobId": job_id, "status": "running"})
            if not started.delivered:
                log.error("job_dropped", job=job_id, reason="running status not delivered")
                return
            if started.conflict:
                log.warning("job_dropped", job=job_id, reason="server no longer assigns this job to us")
                return
            if started.cancel_requested and running.process.request_kill(CANCELLED):
                log.info("job_cancel_requested", job=job_id)
            timeout = job.get("timeoutSeconds")
            timeout_s = (
                float(timeout) if isinstance(timeout, int | float) and not isinstance(timeout, bool) else None
            )
            log.info("job_started", job=job_id, timeout=timeout_s)
            began = time.monotonic()
            outcome = self._execute(running, timeout_s)
            elapsed = f"{time.monotonic() - began:.1f}s"
            if outcome.status == "completed":
                log.info("job_completed", job=job_id, duration=elapsed)
            else:
                log.warning("job_failed", job=job_id, duration=elapsed, error=short(outcome.error))
            self.reporter.report_outcome(job_id, outcome)
        except TokenRejectedError:
            self._token_rejected()
        except Exception as exc:  # never let a job thread die silently
            log.error("job_internal_error", job=job_id, error=f"{type(exc).__name__}: {exc}")
            try:
                self.reporter.report_outcome(
                    job_id, Outcome(status="failed", error=f"agent error: {type(exc).__name__}")
                )
            except TokenRejectedError:
                self._token_rejected()
        finally:
            with self._cond:
                self._jobs.pop(job_id, None)
                self._cond.notify_all()

    def _execute(self, running: _RunningJob, timeout: float | None) -> Outcome:
        """Run the command with its stderr streamed as the job's log and a fresh artifacts directory, upload
        what it left there, and let the log reach the server: all before the final report."""
        job_id = running.job_id
        artifacts_dir = Path(tempfile.mkdtemp(prefix="hangar-artifacts-"))
        stream = LogStream(
            self.client,
            job_id,
            pacer=self._log_pacer,
            on_cancel=lambda: self._cancel_jobs([job_id]),
            on_token_rejected=self._token_rejected,
            spool_bytes=self.log_spool_bytes,
        )
        stream.start()
        try:
            outcome = running.process.run(
                timeout, env={ARTIFACTS_ENV: str(artifacts_dir)}, stderr_sink=stream.feed
            )
            stream.close()
            outcome = self.reporter.upload_artifacts(
                job_id, running.process, outcome, artifacts_dir, cancelled=stream.cancel_requested
            )
            flush = SHUTDOWN_LOG_FLUSH_SECONDS if self.stop_polling.is_set() else LOG_FLUSH_SECONDS
            if not stream.finish(flush):
                log.warning("job_log_incomplete", job=job_id, unsent_bytes=stream.unsent_bytes)
            return outcome
        finally:
            stream.abort()
            shutil.rmtree(artifacts_dir, ignore_errors=True)
