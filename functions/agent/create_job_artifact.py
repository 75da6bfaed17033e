"""POST /api/runners/jobs/artifacts — the assigned runner declares a file its job produced and gets a
presigned S3 PUT bound to the declared size and content type (size and count limits: docs/limits.md, "Job logs
and artifacts")."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.jobs import artifacts
from hangar.jobs.models.artifacts import ArtifactUpload, CreateArtifactRequest

app = api_app()


@app.post(
    "/api/runners/jobs/artifacts",
    responses=app.responses(ArtifactUpload, 201, conflict=True, description="Where to upload the file"),
)
def create_job_artifact(body: CreateArtifactRequest) -> Response[str]:
    return app.ok(artifacts.declare_artifact(app.runner(), body), status=201)


handler = lambda_handler(app)
