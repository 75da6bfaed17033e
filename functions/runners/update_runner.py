"""PUT /api/runners/{runnerId} — changes name, labels or configuredConcurrency."""

from aws_lambda_powertools.event_handler import Response
from hangar import runners
from hangar.http import api_app, lambda_handler
from hangar.models.runners import ApiRunner, UpdateRunnerRequest

app = api_app()


@app.put("/api/runners/<runnerId>", responses=app.responses(ApiRunner))
def update_runner(runnerId: str, body: UpdateRunnerRequest) -> Response[str]:
    principal = app.user("runners:manage")
    return app.ok(runners.api_view(runners.update_runner(principal.org_id, runnerId, body)))


handler = lambda_handler(app)
