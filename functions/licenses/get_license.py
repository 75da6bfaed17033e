"""GET /v1/license — the caller's effective license and usage; any read scope will do."""

from aws_lambda_powertools.event_handler import Response
from hangar import licensing
from hangar.auth import READ_SCOPES
from hangar.http import lambda_handler, v1_app

app = v1_app()


@app.get("/v1/license")
def get_license() -> Response[str]:
    principal = app.user()
    principal.require_any(READ_SCOPES)
    return app.ok(licensing.get_license(principal.org_id))


handler = lambda_handler(app)
