"""GET /v1/jobs/{jobId}/artifacts — the job's uploaded artifacts with download URLs valid 15 minutes."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.jobs import artifacts
from hangar.jobs.models.artifacts import V1ArtifactList

app = v1_app()


@app.get("/v1/jobs/<jobId>/artifacts", responses=app.responses(V1ArtifactList), security=app.requires("jobs:read"))
def list_job_artifacts(jobId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(artifacts.list_artifacts(principal.org_id, jobId))


handler = lambda_handler(app)
