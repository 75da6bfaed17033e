"""GET /v1/api-keys — the tenant's API keys, newest first (names, scopes, prefixes; never a secret)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit
from hangar.tenancy import api_keys
from hangar.tenancy.models.api_keys import ApiKeyList

app = v1_app()


@app.get("/v1/api-keys", responses=app.responses(ApiKeyList, page=True), security=app.requires("keys:manage"))
def list_api_keys(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE, cursor: Annotated[Cursor | None, Query()] = None
) -> Response[str]:
    principal = app.user()
    items, next_cursor = api_keys.list_api_keys(principal.org_id, limit, cursor)
    return app.ok(ApiKeyList(apiKeys=[api_keys.view(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
