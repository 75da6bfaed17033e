"""GET /v1/jobs/{jobId} — one of the tenant's jobs; another tenant's id is a 404."""

from aws_lambda_powertools.event_handler import Response
from hangar import jobs
from hangar.http import lambda_handler, v1_app
from hangar.models.jobs import V1Job

app = v1_app()


@app.get("/v1/jobs/<jobId>", responses=app.responses(V1Job))
def get_job(jobId: str) -> Response[str]:
    principal = app.user("jobs:read")
    return app.ok(jobs.v1_view(jobs.get_job(principal.org_id, jobId)))


handler = lambda_handler(app)
