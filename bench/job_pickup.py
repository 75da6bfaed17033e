"""Section 9: job pickup latency, from `POST /v1/jobs` returning to the job's command starting.

All real processes, as `make run` serves the stack: `python -m local serve` (`local.testing.start_local_api`,
the template's default intervals, limits on), and per lane one tenant with one `hangar-agent` (the console
script `pip install -e ./agent` puts in the venv) registered with a real enrollment token and run at its
defaults (it adopts the server's `pollIntervalSeconds` from the first poll). The job command is a shell
line whose first act is `date +%s.%N`: it writes that moment and `$HANGAR_JOB_ID` to a file the bench
reads (the agent runs it with `/bin/sh -c` and adds HANGAR_JOB_ID to its environment).

Lanes run in parallel to keep the wall time down; each lane submits one job at a time, at a random offset
(uniform over one poll interval) after its previous job completed, so the submission falls anywhere in the
agent's poll cycle, as a user's would. The job's `assignedAt` and `startedAt` (the server's clock, the same
clock as ours: nothing moves it here) split each pickup into the wait for the agent's next poll and the
dispatch after the claim (the claiming poll's answer, the agent's `running` report, starting the command).
Baselines from the same run: the poll interval the server hands out, and the claim and `running` report
handlers called in-process (section 1's `RunnerSession` against moto), what the dispatch costs without HTTP.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

LANES = 5
JOBS_PER_LANE = 5  # 25 jobs in about 60 s
DIRECT_CLAIMS = 20
USER_SCOPES = "runners:manage jobs:read jobs:manage"
JOB_LABELS = ["linux"]
AGENT_COMMAND = Path(sys.executable).parent / "hangar-agent"
# The job command: its first act records the moment it runs and the job id it was given, atomically.
JOB_COMMAND = (
    'started=$(date +%s.%N); printf "%s %s\\n" "$started" "$HANGAR_JOB_ID" > "{dir}/$HANGAR_JOB_ID.tmp"'
    ' && mv "{dir}/$HANGAR_JOB_ID.tmp" "{dir}/$HANGAR_JOB_ID.start"; cat > /dev/null'
)
START_TIMEOUT_SECONDS = 120.0
TERMINAL = ("completed", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class Pickup:
    job_id: str
    submitted: float  # POST /v1/jobs returned (epoch seconds, this process's clock)
    assigned: float  # the job's assignedAt (the claiming poll, server side)
    running: float  # the job's startedAt (the agent's `running` report, server side)
    command_started: float  # what the job command recorded

    @property
    def seconds(self) -> float:
        return self.command_started - self.submitted

    @property
    def poll_wait_seconds(self) -> float:
        return self.assigned - self.submitted

    @property
    def dispatch_seconds(self) -> float:
        return self.command_started - self.assigned


@dataclass(frozen=True)
class JobPickups:
    pickups: list[Pickup]
    poll_interval_seconds: float  # what the server tells the agent
    heartbeat_interval_seconds: float
    direct_dispatch_seconds: float  # in-process claim + running report, median
    lanes: int
    wall_seconds: float
    startup_seconds: float

    @property
    def pickup_times(self) -> list[float]:
        return [pickup.seconds for pickup in self.pickups]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p95 of 25 values is the 24th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def measure_direct_dispatch_seconds(claims: int = DIRECT_CLAIMS) -> float:
    """Median of a claiming poll plus a `running` report, the real handlers in-process against moto."""
    from support import start_aws_stack

    from bench.request_calls import RunnerSession, function_output

    with start_aws_stack(), function_output():
        runner = RunnerSession()
        runner.heartbeat()  # a runner takes jobs once it is online
        times = []
        for round_number in range(claims + 1):
            runner.queue_job()
            started = time.perf_counter()
            runner.poll_with_job()
            runner.report_running()
            if round_number:  # the first round imports the handlers
                times.append(time.perf_counter() - started)
            runner.report_completed()
    return statistics.median(times)


class Lane:
    """One tenant with one registered `hangar-agent run`, taking one job at a time."""

    def __init__(self, api: Any, index: int, workdir: Path) -> None:
        from local.testing import unique_org

        self.api = api
        self.org = unique_org(f"pickup{index}")
        self.workdir = workdir / f"lane-{index}"
        self.records = self.workdir / "started"
        self.records.mkdir(parents=True)
        self.config = self.workdir / "agent.json"
        self.log_path = self.workdir / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pickups: list[Pickup] = []
        self.error: BaseException | None = None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        result = self.api.call(method, path, token=self.api.jwt(self.org, USER_SCOPES), json=body)
        if result.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {result.status} {result.body}")
        return result.body

    def _agent_env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("HANGAR_AGENT_")}
        env["HANGAR_AGENT_CONFIG"] = str(self.config)
        return env

    def register(self) -> None:
        """An enrollment token over HTTP, then `hangar-agent register` with it."""
        licensed = self.api.call(
            "PUT",
            f"/v1/orgs/{self.org}/license",
            token=self.api.jwt("operators", "admin:licenses"),
            json={"plan": "enterprise"},
        )
        if licensed.status != 200:
            raise RuntimeError(f"license: {licensed.status} {licensed.body}")
        enrollment = self._call("POST", "/v1/runners/enrollment-tokens", {})["token"]
        options = ["--api-url", self.api.url, "--token", enrollment, "--name", self.org, "--label", JOB_LABELS[0]]
        registered = subprocess.run(
            [str(AGENT_COMMAND), "register", *options],
            env=self._agent_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if registered.returncode != 0:
            raise RuntimeError(f"hangar-agent register: {registered.stdout}{registered.stderr}")

    def start_agent(self) -> None:
        if any(character in str(self.records) for character in '"$`\\'):
            raise RuntimeError(f"{self.records}: the job command quotes it in double quotes")
        command = JOB_COMMAND.format(dir=self.records)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(AGENT_COMMAND), "run", "--exec", command],
                env=self._agent_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    def stop_agent(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def _wait_started(self, job_id: str) -> float:
        record = self.records / f"{job_id}.start"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not record.exists():
            if time.monotonic() > deadline:
                log = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"job {job_id} did not start in {START_TIMEOUT_SECONDS:.0f} s; agent log:\n{log}")
            time.sleep(0.02)
        moment, recorded_id = record.read_text().split()
        if recorded_id != job_id:
            raise RuntimeError(f"the command for {job_id} saw HANGAR_JOB_ID={recorded_id}")
        return float(moment)

    def _wait_terminal(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            job: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}")
            if job["status"] in TERMINAL:
                if job["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {json.dumps(job)[:500]}")
                return job
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} still {job['status']} after {START_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.25)

    def run_jobs(self, jobs: int, poll_interval: float, rng: random.Random) -> None:
        try:
            for _ in range(jobs):
                time.sleep(rng.uniform(0, poll_interval))
                body = {"type": "scan", "repositoryName": "acme/infra", "branch": "main", "labels": JOB_LABELS}
                job_id = self._call("POST", "/v1/jobs", body)["id"]
                submitted = time.time()
                command_started = self._wait_started(job_id)
                time.sleep(0.2)  # the command exits at once; the agent's `completed` report follows
                job = self._wait_terminal(job_id)
                self.pickups.append(
                    Pickup(
                        job_id=job_id,
                        submitted=submitted,
                        assigned=_epoch(job["assignedAt"]),
                        running=_epoch(job["startedAt"]),
                        command_started=command_started,
                    )
                )
        except BaseException as error:  # reported by the caller, with the lane's agent log
            self.error = error


@contextmanager
def _lanes(api: Any, count: int) -> Iterator[list[Lane]]:
    with tempfile.TemporaryDirectory(prefix="hangar-bench-pickup-") as directory, ExitStack() as stack:
        lanes = [Lane(api, index, Path(directory)) for index in range(count)]
        for lane in lanes:
            lane.register()
            stack.callback(lane.stop_agent)
            lane.start_agent()
        yield lanes


def _server_intervals(api: Any, lane: Lane) -> tuple[float, float]:
    """(poll, heartbeat) intervals as the server hands them to the agent (an empty poll's answer and a
    heartbeat's), i.e. what the agent runs at. Called before any job is queued, so the poll claims none."""
    token = json.loads(lane.config.read_text())["token"]
    intervals = []
    for path, body, field in (
        ("/api/runners/jobs", {}, "pollIntervalSeconds"),
        ("/api/runners/heartbeat", {"status": "online"}, "heartbeatIntervalSeconds"),
    ):
        answer = api.call("POST", path, runner_token=token, json=body)
        if answer.status != 200 or answer.body["data"].get("job"):
            raise RuntimeError(f"{path}: {answer.status} {answer.body}")
        intervals.append(float(answer.body["data"][field]))
    return intervals[0], intervals[1]


def measure_job_pickups(lanes: int = LANES, jobs_per_lane: int = JOBS_PER_LANE, seed: int = 12) -> JobPickups:
    from local.testing import start_local_api

    if not AGENT_COMMAND.exists():
        raise RuntimeError(f"{AGENT_COMMAND} is missing: make install (pip install -e ./agent)")
    direct = measure_direct_dispatch_seconds()
    rng = random.Random(seed)
    with start_local_api() as api, _lanes(api, lanes) as started_lanes:
        poll_interval, heartbeat_interval = _server_intervals(api, started_lanes[0])
        began = time.monotonic()
        threads = [
            threading.Thread(
                target=lane.run_jobs,
                args=(jobs_per_lane, poll_interval, random.Random(rng.random())),
                name=f"pickup-lane-{index}",
                daemon=True,
            )
            for index, lane in enumerate(started_lanes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(jobs_per_lane * (poll_interval + START_TIMEOUT_SECONDS) + 60)
        wall = time.monotonic() - began
        for lane in started_lanes:
            if lane.error is not None:
                log = lane.log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"lane {lane.org}: {lane.error}\nagent log (end):\n{log}") from lane.error
        startup = api.startup_seconds
    return JobPickups(
        pickups=[pickup for lane in started_lanes for pickup in lane.pickups],
        poll_interval_seconds=poll_interval,
        heartbeat_interval_seconds=heartbeat_interval,
        direct_dispatch_seconds=direct,
        lanes=lanes,
        wall_seconds=wall,
        startup_seconds=startup,
    )
