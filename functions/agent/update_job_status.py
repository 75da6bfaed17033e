"""POST /api/runners/jobs/status — the assigned runner reports running, completed or failed (`/api` dialect:
docs/architecture.md, "The two API dialects")."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.jobs import claims as job_claims
from hangar.jobs.models.jobs import JobStatusRequest, JobStatusResult

app = api_app()


@app.post("/api/runners/jobs/status", responses=app.responses(JobStatusResult, conflict=True))
def update_job_status(body: JobStatusRequest) -> Response[str]:
    report = job_claims.report_status(app.runner(), body.jobId, body.status, body.result, body.error)
    return app.ok(job_claims.status_view(report))


# A result may be 64 KiB on its own; leave room for the rest of the body so the 413 names `result`.
handler = lambda_handler(app, max_body_bytes=72 * 1024)
