"""GET /v1/targets — the tenant's targets; `limit` and `cursor` page through them."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit
from hangar.tenancy import targets
from hangar.tenancy.models.targets import TargetList

app = v1_app()


@app.get("/v1/targets", responses=app.responses(TargetList, page=True), security=app.requires("targets:read"))
def list_targets(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE, cursor: Annotated[Cursor | None, Query()] = None
) -> Response[str]:
    principal = app.user()
    items, next_cursor = targets.list_targets(principal.org_id, limit, cursor)
    return app.ok(TargetList(targets=[targets.view(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
