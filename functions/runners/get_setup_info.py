"""GET /api/runners/{runnerId}/setup-info — API URL, token (until the runner first authenticates) and
the install command, for the CLI (`/api` dialect: docs/architecture.md, "The two API dialects")."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runner_tokens
from hangar.fleet.models.enrollment import SetupInfo

app = api_app()


@app.get(
    "/api/runners/<runnerId>/setup-info", responses=app.responses(SetupInfo), security=app.requires("runners:manage")
)
def get_setup_info(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    api_url = runner_tokens.public_api_url(app.current_event.raw_event.get("requestContext") or {})
    return app.ok(runner_tokens.setup_info(principal.org_id, runnerId, api_url))


handler = lambda_handler(app)
