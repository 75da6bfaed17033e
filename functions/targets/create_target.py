"""POST /v1/targets — a new target, within the plan's target limit and allowed visibilities."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import lambda_handler, v1_app
from hangar.tenancy import targets
from hangar.tenancy.models.targets import CreateTargetRequest, TargetView

app = v1_app()


@app.post("/v1/targets", responses=app.responses(TargetView, 201), security=app.requires("targets:manage"))
def create_target(body: CreateTargetRequest) -> Response[str]:
    principal = app.user()
    target = targets.create_target(principal.org_id, body.name, body.url, body.visibility)
    return app.ok(targets.view(target), status=201)


handler = lambda_handler(app)
