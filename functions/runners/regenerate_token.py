"""POST /api/runners/{runnerId}/regenerate-token — a new runner token; the old one stops working at once.

At most 5 per hour per runner (docs/limits.md); the 6th answers 429 with Retry-After."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runner_tokens
from hangar.fleet.models.enrollment import RegeneratedToken

app = api_app()


@app.post(
    "/api/runners/<runnerId>/regenerate-token",
    responses=app.responses(RegeneratedToken, conflict=True),
    security=app.requires("runners:manage"),
)
def regenerate_token(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    return app.ok(runner_tokens.regenerate_token(principal.org_id, runnerId))


handler = lambda_handler(app)
