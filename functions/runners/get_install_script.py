"""GET /api/runners/{runnerId}/setup?token=hgr_... — the install script, text/x-shellscript.

The runner token in the query is the credential (InstallTokenAuthorizer); errors stay JSON."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import api_app, lambda_handler
from hangar.core.models import PathId
from hangar.fleet import runner_tokens

app = api_app()

SHELL_SCRIPT = "text/x-shellscript"


@app.get(
    "/api/runners/<runnerId>/setup",
    responses=app.responses(str, media_type=SHELL_SCRIPT, description="The install script (bash)"),
)
def get_install_script(runnerId: Annotated[PathId, Path()]) -> Response[str]:
    event = app.current_event
    script = runner_tokens.install_script(
        app.runner(),
        runnerId,
        event.get_query_string_value("token"),
        runner_tokens.public_api_url(event.raw_event.get("requestContext") or {}),
    )
    # The script holds the token: no cache may keep it.
    return Response(status_code=200, content_type=SHELL_SCRIPT, body=script, headers={"Cache-Control": "no-store"})


handler = lambda_handler(app)
