"""DELETE /v1/api-keys/{keyId} — revokes the key at once; another tenant's key is a 404."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import PathId, V1Deleted
from hangar.tenancy import api_keys

app = v1_app()


@app.delete("/v1/api-keys/<keyId>", responses=app.responses(V1Deleted), security=app.requires("keys:manage"))
def delete_api_key(keyId: Annotated[PathId, Path()]) -> Response[str]:
    principal = app.user()
    api_keys.delete_api_key(principal.org_id, keyId)
    return app.ok(V1Deleted(id=keyId, deleted=True))


handler = lambda_handler(app)
