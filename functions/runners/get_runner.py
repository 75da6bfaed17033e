"""GET /api/runners/{runnerId} — one of the caller's runners; another tenant's id is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiRunner

app = api_app()


@app.get("/api/runners/<runnerId>", responses=app.responses(ApiRunner), security=app.requires("runners:read"))
def get_runner(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(runners.api_view(runners.get_runner(principal.org_id, runnerId)))


handler = lambda_handler(app)
