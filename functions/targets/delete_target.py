"""DELETE /v1/targets/{targetId} — deletes the target and frees its place under the target limit."""

from aws_lambda_powertools.event_handler import Response
from hangar import targets
from hangar.http import lambda_handler, v1_app

app = v1_app()


@app.delete("/v1/targets/<targetId>")
def delete_target(targetId: str) -> Response[str]:
    principal = app.user("targets:manage")
    targets.delete_target(principal.org_id, targetId)
    return app.ok({"id": targetId, "deleted": True})


handler = lambda_handler(app)
