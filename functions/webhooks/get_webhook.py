"""GET /v1/webhooks/{webhookId} — one webhook (never its secret); another tenant's is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.events import webhooks
from hangar.events.models.webhooks import WebhookView

app = v1_app()


@app.get("/v1/webhooks/<webhookId>", responses=app.responses(WebhookView), security=app.requires("webhooks:manage"))
def get_webhook(webhookId: Annotated[PathId, Path()]) -> Response[str]:
    return app.ok(webhooks.webhook_view(webhooks.get_webhook(app.user().org_id, webhookId)))


handler = lambda_handler(app)
