"""GET /v1/runners/readiness — may a self-hosted scan start now, optionally for `targetId` on `runnerId`."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.fleet import readiness
from hangar.fleet.models.readiness import Readiness

app = v1_app()


@app.get("/v1/runners/readiness", responses=app.responses(Readiness), security=app.requires("runners:read"))
def get_readiness(
    targetId: Annotated[PathId | None, Query()] = None, runnerId: Annotated[PathId | None, Query()] = None
) -> Response[str]:
    principal = app.user()
    return app.ok(readiness.get_readiness(principal.org_id, targetId, runnerId))


handler = lambda_handler(app)
