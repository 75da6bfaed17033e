"""GET /api/runners/me — the calling runner as the API sees it (`hangar-agent status`); runner token only.

Scope-free: the runner token is the credential and names the runner, so no other runner can be asked for."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.fleet import heartbeat, runners
from hangar.fleet.models.runners import ApiRunner

app = api_app()


@app.get("/api/runners/me", responses=app.responses(ApiRunner))
def get_own_runner() -> Response[str]:
    return app.ok(runners.api_view(heartbeat.own_runner(app.runner())))


handler = lambda_handler(app)
