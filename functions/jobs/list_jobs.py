"""GET /v1/jobs — the tenant's jobs, newest first; `status` and `runnerId` filter, `limit`/`cursor` page."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit, PathId
from hangar.jobs import service as jobs
from hangar.jobs.models.jobs import JobStatus, V1JobList

app = v1_app()


@app.get("/v1/jobs", responses=app.responses(V1JobList, page=True), security=app.requires("jobs:read"))
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    runnerId: Annotated[PathId | None, Query()] = None,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Response[str]:
    principal = app.user()
    items, next_cursor = jobs.list_jobs(principal.org_id, limit, cursor, status=status, runner_id=runnerId)
    return app.ok(V1JobList(jobs=[jobs.v1_view(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
