"""POST /v1/jobs — queues a job for the tenant's runners; `Idempotency-Key` makes a retried create safe."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from hangar.api.http import lambda_handler, v1_app
from hangar.core.observability import metrics
from hangar.jobs import service as jobs
from hangar.jobs.models.jobs import CreateJobRequest, IdempotencyKey, V1Job

app = v1_app()


@app.post(
    "/v1/jobs",
    responses=app.responses(V1Job, 201, conflict=True, description="The job (a replay: the first job)"),
    security=app.requires("jobs:manage"),
)
def create_job(
    body: CreateJobRequest,
    idempotency_key: Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")] = None,
) -> Response[str]:
    principal = app.user()
    job, replayed = jobs.create_job(principal.org_id, body, idempotency_key, app.lambda_context)
    if not replayed:
        metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return app.ok(jobs.v1_view(job), status=201, headers=headers)


handler = lambda_handler(app)
