"""POST /v1/webhooks/{webhookId}/test — sends a `ping` event; its delivery is listed like any other."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.events import webhooks
from hangar.events.models.webhooks import DeliveryView

app = v1_app()


@app.post(
    "/v1/webhooks/<webhookId>/test",
    responses=app.responses(DeliveryView, 202),
    security=app.requires("webhooks:manage"),
)
def test_webhook(webhookId: Annotated[PathId, Path()]) -> Response[str]:
    return app.ok(webhooks.delivery_view(webhooks.send_ping(app.user().org_id, webhookId)), status=202)


handler = lambda_handler(app)
