"""GET /api/runners — the caller's runners (`/api` dialect); `limit` and `cursor` page through them."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiRunner

app = api_app()


@app.get("/api/runners", responses=app.responses(list[ApiRunner], page=True), security=app.requires("runners:read"))
def list_runners(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE, cursor: Annotated[Cursor | None, Query()] = None
) -> Response[str]:
    principal = app.user()
    items, next_cursor = runners.list_runners(principal.org_id, limit, cursor)
    return app.ok([runners.api_view(item) for item in items], page=next_cursor)


handler = lambda_handler(app)
