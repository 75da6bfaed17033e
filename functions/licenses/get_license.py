"""GET /v1/license — the caller's effective license and usage; any read scope will do."""

from aws_lambda_powertools.event_handler import Response
from hangar import licensing
from hangar.auth import READ_SCOPES
from hangar.http import lambda_handler, v1_app
from hangar.models.licenses import LicenseView

app = v1_app()


@app.get("/v1/license", responses=app.responses(LicenseView), security=app.requires(*sorted(READ_SCOPES)))
def get_license() -> Response[str]:
    return app.ok(licensing.get_license(app.user().org_id))


handler = lambda_handler(app)
