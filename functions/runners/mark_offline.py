"""POST /api/runners/{runnerId}/mark-offline — marks the runner offline by hand."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiRunner

app = api_app()


@app.post(
    "/api/runners/<runnerId>/mark-offline", responses=app.responses(ApiRunner), security=app.requires("runners:manage")
)
def mark_offline(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(runners.api_view(runners.mark_offline(principal.org_id, runnerId)))


handler = lambda_handler(app)
