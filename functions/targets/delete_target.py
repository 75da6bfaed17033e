"""DELETE /v1/targets/{targetId} — deletes the target and frees its place under the target limit."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId, V1Deleted
from hangar.tenancy import targets

app = v1_app()


@app.delete("/v1/targets/<targetId>", responses=app.responses(V1Deleted), security=app.requires("targets:manage"))
def delete_target(targetId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    targets.delete_target(principal.org_id, targetId)
    return app.ok(V1Deleted(id=targetId, deleted=True))


handler = lambda_handler(app)
