"""DELETE /v1/webhooks/{webhookId} — nothing more is sent to it; another tenant's is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId, V1Deleted
from hangar.events import webhooks

app = v1_app()


@app.delete("/v1/webhooks/<webhookId>", responses=app.responses(V1Deleted), security=app.requires("webhooks:manage"))
def delete_webhook(webhookId: Annotated[PathId, Path()]) -> Response[str]:
    webhooks.delete_webhook(app.user().org_id, webhookId)
    return app.ok(V1Deleted(id=webhookId, deleted=True))


handler = lambda_handler(app)
