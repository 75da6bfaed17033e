"""POST /v1/webhooks — a webhook for some or all event types; its signing secret is shown once."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import lambda_handler, v1_app
from hangar.events import webhooks
from hangar.events.models.webhooks import CreatedWebhookView, CreateWebhookRequest

app = v1_app()


@app.post("/v1/webhooks", responses=app.responses(CreatedWebhookView, 201), security=app.requires("webhooks:manage"))
def create_webhook(body: CreateWebhookRequest) -> Response[str]:
    webhook, secret = webhooks.create_webhook(app.user().org_id, body)
    view = CreatedWebhookView(**webhooks.webhook_view(webhook).model_dump(), secret=secret)
    return app.ok(view, status=201)


handler = lambda_handler(app)
