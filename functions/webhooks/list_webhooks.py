"""GET /v1/webhooks — the tenant's webhooks (never a secret)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit
from hangar.events import webhooks
from hangar.events.models.webhooks import WebhookList

app = v1_app()


@app.get("/v1/webhooks", responses=app.responses(WebhookList, page=True), security=app.requires("webhooks:manage"))
def list_webhooks(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE, cursor: Annotated[Cursor | None, Query()] = None
) -> Response[str]:
    items, next_cursor = webhooks.list_webhooks(app.user().org_id, limit, cursor)
    return app.ok(WebhookList(webhooks=[webhooks.webhook_view(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
