"""PUT /api/runners/{runnerId} — changes name, labels or configuredConcurrency."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiRunner, UpdateRunnerRequest

app = api_app()


@app.put("/api/runners/<runnerId>", responses=app.responses(ApiRunner), security=app.requires("runners:manage"))
def update_runner(runnerId: Annotated[PathId, Path()], body: UpdateRunnerRequest) -> Response[str]:
    principal = app.user()
    return app.ok(runners.api_view(runners.update_runner(principal.org_id, runnerId, body)))


handler = lambda_handler(app)
