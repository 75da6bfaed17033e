"""GET /v1/license — the caller's effective license and usage; any read scope will do."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import lambda_handler, v1_app
from hangar.identity.auth import READ_SCOPES
from hangar.tenancy import licensing
from hangar.tenancy.models.licenses import LicenseView

app = v1_app()


@app.get("/v1/license", responses=app.responses(LicenseView), security=app.requires(*sorted(READ_SCOPES)))
def get_license() -> Response[str]:
    return app.ok(licensing.get_license(app.user().org_id))


handler = lambda_handler(app)
