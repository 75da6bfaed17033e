"""DELETE /v1/api-keys/{keyId} — revokes the key at once; another tenant's key is a 404."""

from aws_lambda_powertools.event_handler import Response
from hangar import api_keys
from hangar.http import lambda_handler, v1_app

app = v1_app()


@app.delete("/v1/api-keys/<keyId>")
def delete_api_key(keyId: str) -> Response[str]:
    principal = app.user("keys:manage")
    api_keys.delete_api_key(principal.org_id, keyId)
    return app.ok({"id": keyId, "deleted": True})


handler = lambda_handler(app)
