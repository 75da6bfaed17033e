"""GET /v1/targets/{targetId} — one of the tenant's targets; another tenant's id is a 404."""

from aws_lambda_powertools.event_handler import Response
from hangar import targets
from hangar.http import lambda_handler, v1_app

app = v1_app()


@app.get("/v1/targets/<targetId>")
def get_target(targetId: str) -> Response[str]:
    principal = app.user("targets:read")
    return app.ok(targets.view(targets.get_target(principal.org_id, targetId)))


handler = lambda_handler(app)
