"""GET /v1/jobs/{jobId} — one of the tenant's jobs; another tenant's id is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.jobs import service as jobs
from hangar.jobs.models.jobs import V1Job

app = v1_app()


@app.get("/v1/jobs/<jobId>", responses=app.responses(V1Job), security=app.requires("jobs:read"))
def get_job(jobId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(jobs.v1_view(jobs.get_job(principal.org_id, jobId)))


handler = lambda_handler(app)
