"""GET /v1/runners/readiness — may a self-hosted scan start now, optionally for `targetId` on `runnerId`."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar import readiness
from hangar.http import lambda_handler, v1_app
from hangar.models.common import PathId

app = v1_app()


@app.get("/v1/runners/readiness")
def get_readiness(
    targetId: Annotated[PathId | None, Query()] = None, runnerId: Annotated[PathId | None, Query()] = None
) -> Response[str]:
    principal = app.user("runners:read")
    return app.ok(readiness.get_readiness(principal.org_id, targetId, runnerId))


handler = lambda_handler(app)
