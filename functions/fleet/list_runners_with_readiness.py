"""GET /v1/runners — the tenant's runners (`limit`/`cursor`) plus readiness over the whole fleet."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit
from hangar.fleet import readiness
from hangar.fleet.models.readiness import RunnersWithReadiness

app = v1_app()


@app.get("/v1/runners", responses=app.responses(RunnersWithReadiness, page=True), security=app.requires("runners:read"))
def list_runners_with_readiness(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE, cursor: Annotated[Cursor | None, Query()] = None
) -> Response[str]:
    principal = app.user()
    result, next_cursor = readiness.list_runners_with_readiness(principal.org_id, limit, cursor)
    return app.ok(result, page=next_cursor)


handler = lambda_handler(app)
