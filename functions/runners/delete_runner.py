"""DELETE /api/runners/{runnerId} — deletes the runner and revokes its token immediately."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiDeletedRunner

app = api_app()


@app.delete(
    "/api/runners/<runnerId>", responses=app.responses(ApiDeletedRunner), security=app.requires("runners:manage")
)
def delete_runner(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    runner = runners.delete_runner(principal.org_id, runnerId)
    return app.ok(ApiDeletedRunner(_id=runner.runner_id, deleted=True))


handler = lambda_handler(app)
