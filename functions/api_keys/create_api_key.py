"""POST /v1/api-keys — a new `hgk_` key with a subset of the caller's scopes; the token is shown once."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import lambda_handler, v1_app
from hangar.tenancy import api_keys
from hangar.tenancy.models.api_keys import CreateApiKeyRequest, CreatedApiKeyView

app = v1_app()


@app.post("/v1/api-keys", responses=app.responses(CreatedApiKeyView, 201), security=app.requires("keys:manage"))
def create_api_key(body: CreateApiKeyRequest) -> Response[str]:
    principal = app.user()
    created = api_keys.create_api_key(
        principal.org_id, body.name, body.scopes, principal.subject or principal.org_id, principal.scopes
    )
    return app.ok(api_keys.created_view(created), status=201)


handler = lambda_handler(app)
