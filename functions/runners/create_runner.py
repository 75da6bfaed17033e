"""POST /api/runners — creates an offline runner; its `hgr_` token is in this response only (and in setup-info
until the runner first authenticates: docs/architecture.md, "Credentials and how they are checked")."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler
from hangar.core.observability import metrics
from hangar.fleet import runners
from hangar.fleet.models.runners import ApiCreatedRunner, CreateRunnerRequest

app = api_app()


@app.post("/api/runners", responses=app.responses(ApiCreatedRunner, 201), security=app.requires("runners:manage"))
def create_runner(body: CreateRunnerRequest) -> Response[str]:
    principal = app.user()
    runner, token = runners.create_runner(principal.org_id, body.name, body.labels, body.configuredConcurrency)
    metrics.add_metric(name="RunnersCreated", unit="Count", value=1)
    return app.ok(runners.created_view(runner, token), status=201)


handler = lambda_handler(app)
