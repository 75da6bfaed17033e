"""What a job leaves behind, told to the server: its artifacts uploaded, then its status reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangar_agent import log
from hangar_agent.api import ApiClient, Response
from hangar_agent.artifacts import find_artifacts, upload_artifacts
from hangar_agent.job import CANCELLED, SHUTDOWN, JobProcess, Outcome

STATUS_PATH = "/api/runners/jobs/status"
REPORT_RETRY_SECONDS = 600.0  # keep trying to deliver a status report for up to 10 minutes
UPLOAD_RETRY_SECONDS = 120.0  # per artifact: how long to keep asking the API for its upload URL
ERROR_MAX_CHARS = 2048
# The job is no longer ours: 409 (it moved on, e.g. cancelled or finished) or 404 (the sweeper requeued it
# after our heartbeats stopped, so it names no runner or another one). Nothing more to report.
NOT_OURS_STATUSES = (404, 409)


@dataclass(frozen=True)
class ReportResult:
    delivered: bool
    cancel_requested: bool = False
    conflict: bool = False  # the server refused the report (404/409: not ours any more, or another 4xx)
    http_status: int | None = None
    error: str | None = None  # "<code>: <message>" of a refused report


class JobReporter:
    """Sends a job's artifacts and status reports; `halt` (the agent is over) aborts their retries.
    A report raises TokenRejectedError on 401."""

    def __init__(self, client: ApiClient, halt: threading.Event) -> None:
        self.client = client
        self.halt = halt

    def upload_artifacts(
        self, job_id: str, process: JobProcess, outcome: Outcome, directory: Path, *, cancelled: bool
    ) -> Outcome:
        """Upload the job's artifacts; a failed upload fails the job (its error says which file and why)."""
        killed_for = process.kill_reason
        if cancelled or killed_for in (CANCELLED, SHUTDOWN):
            # The job is over server-side (or the agent is leaving): nothing will accept its artifacts.
            left = len(find_artifacts(directory))
            if left:
                log.info("artifacts_skipped", job=job_id, files=left, reason=killed_for or CANCELLED)
            if cancelled and outcome.status == "completed":
                return Outcome(status="failed", error=CANCELLED, exit_code=outcome.exit_code)
            return outcome
        deadline = time.monotonic() + UPLOAD_RETRY_SECONDS
        uploaded, error = upload_artifacts(self.client, job_id, directory, abort=self.halt, deadline=deadline)
        if error is None:
            return outcome
        log.error("artifact_upload_failed", job=job_id, uploaded=uploaded, error=error)
        message = f"artifact upload failed: {error}"
        if outcome.status == "failed" and outcome.error:
            message = f"{message}; the command failed too: {outcome.error}"
        return Outcome(status="failed", error=short(message, ERROR_MAX_CHARS), exit_code=outcome.exit_code)

    def report_outcome(self, job_id: str, outcome: Outcome) -> None:
        """The final report; a `completed` the server refuses for its result becomes a `failed` one."""
        result = self.report(job_id, outcome.report_body(job_id))
        if not result.delivered:
            log.error("status_report_dropped", job=job_id, status=outcome.status)
            return
        if result.cancel_requested and outcome.status == "completed":
            log.info("job_cancelled_by_server", job=job_id)
        if result.conflict and result.http_status not in NOT_OURS_STATUSES and outcome.status == "completed":
            # e.g. the result was too large or malformed: do not leave the job hanging in "running".
            fallback = Outcome(
                status="failed", error=short(f"result rejected by server: {result.error}", ERROR_MAX_CHARS)
            )
            again = self.report(job_id, fallback.report_body(job_id))
            if not again.delivered:
                log.error("status_report_dropped", job=job_id, status=fallback.status)

    def report(self, job_id: str, body: dict[str, Any]) -> ReportResult:
        """POST a status report, retrying for up to REPORT_RETRY_SECONDS."""
        deadline = time.monotonic() + REPORT_RETRY_SECONDS
        resp: Response | None = self.client.call(
            STATUS_PATH, body, kind="status", abort=self.halt, deadline=deadline
        )
        if resp is None:
            return ReportResult(delivered=False)
        if resp.status in NOT_OURS_STATUSES:
            log.warning(
                "status_report_conflict",
                job=job_id,
                status=body.get("status"),
                http=resp.status,
                code=resp.error_code(),
            )
            return ReportResult(delivered=True, conflict=True, http_status=resp.status)
        if not resp.ok:
            log.warning(
                "status_report_rejected",
                job=job_id,
                status=body.get("status"),
                http=resp.status,
                code=resp.error_code(),
                msg=resp.error_message(),
            )
            return ReportResult(
                delivered=True,
                conflict=True,
                http_status=resp.status,
                error=f"{resp.error_code()}: {resp.error_message()}",
            )
        data = resp.data()
        log.debug("status_reported", job=job_id, status=body.get("status"))
        return ReportResult(delivered=True, cancel_requested=data.get("cancelRequested") is True)


def short(text: str | None, limit: int = 300) -> str | None:
    """The text on one line, cut to `limit` characters."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
