"""GET /v1/webhooks/{webhookId}/deliveries — the webhook's deliveries, newest first, with every attempt."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit, PathId
from hangar.events import webhooks
from hangar.events.models.webhooks import DeliveryList

app = v1_app()


@app.get(
    "/v1/webhooks/<webhookId>/deliveries",
    responses=app.responses(DeliveryList, page=True),
    security=app.requires("webhooks:manage"),
)
def list_deliveries(
    webhookId: Annotated[PathId, Path()],
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Response[str]:
    items, next_cursor = webhooks.list_deliveries(app.user().org_id, webhookId, limit, cursor)
    return app.ok(DeliveryList(deliveries=[webhooks.delivery_view(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
