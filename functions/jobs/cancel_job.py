"""POST /v1/jobs/{jobId}/cancel — cancels a queued or running job (a running job's slot is freed at once
and its runner is told in its next heartbeat and status report)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.jobs import service as jobs
from hangar.jobs.models.jobs import V1Job

app = v1_app()


@app.post(
    "/v1/jobs/<jobId>/cancel", responses=app.responses(V1Job, conflict=True), security=app.requires("jobs:manage")
)
def cancel_job(jobId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(jobs.v1_view(jobs.cancel_job(principal.org_id, jobId)))


handler = lambda_handler(app)
