"""POST /api/runners/{runnerId}/mark-offline — marks the runner offline by hand."""

from aws_lambda_powertools.event_handler import Response
from hangar import runners
from hangar.http import api_app, lambda_handler
from hangar.models.runners import ApiRunner

app = api_app()


@app.post("/api/runners/<runnerId>/mark-offline", responses=app.responses(ApiRunner))
def mark_offline(runnerId: str) -> Response[str]:
    principal = app.user("runners:manage")
    return app.ok(runners.api_view(runners.mark_offline(principal.org_id, runnerId)))


handler = lambda_handler(app)
