"""POST /v1/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver — the same event (same id and body)
again, as a new delivery with a fresh retry schedule, whether the first succeeded or failed."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.events import webhooks
from hangar.events.models.webhooks import DeliveryView

app = v1_app()


@app.post(
    "/v1/webhooks/<webhookId>/deliveries/<deliveryId>/redeliver",
    responses=app.responses(DeliveryView, 202),
    security=app.requires("webhooks:manage"),
)
def redeliver(webhookId: Annotated[PathId, Path()], deliveryId: Annotated[PathId, Path()]) -> Response[str]:
    delivery = webhooks.redeliver(app.user().org_id, webhookId, deliveryId)
    return app.ok(webhooks.delivery_view(delivery), status=202)


handler = lambda_handler(app)
