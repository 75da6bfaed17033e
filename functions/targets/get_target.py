"""GET /v1/targets/{targetId} — one of the tenant's targets; another tenant's id is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId
from hangar.tenancy import targets
from hangar.tenancy.models.targets import TargetView

app = v1_app()


@app.get("/v1/targets/<targetId>", responses=app.responses(TargetView), security=app.requires("targets:read"))
def get_target(targetId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(targets.view(targets.get_target(principal.org_id, targetId)))


handler = lambda_handler(app)
