"""POST /api/runners/jobs — the runner asks for work: the oldest queued job of its tenant that it can run
(labels, pin, free slot, tenant limit), claimed in one transaction; `job: null` when there is none."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.jobs import claims as job_claims
from hangar.jobs.models.jobs import PollResult

app = api_app()


@app.post("/api/runners/jobs", responses=app.responses(PollResult))
def poll_job() -> Response[str]:
    return app.ok(job_claims.poll_result(job_claims.poll_for_job(app.runner())))


handler = lambda_handler(app)
