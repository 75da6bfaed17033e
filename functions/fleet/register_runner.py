"""POST /v1/runners/register — exchanges a one-time enrollment token for a runner and its `hgr_` token.

No user credential: the `hge_` token in the body is the credential (the PublicAuthorizer only counts
the request under the public usage-plan key)."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import lambda_handler, v1_app
from hangar.core.observability import metrics
from hangar.fleet import enrollment
from hangar.fleet.models.enrollment import RegisteredRunner, RegisterRunnerRequest

app = v1_app()


@app.post("/v1/runners/register", responses=app.responses(RegisteredRunner, 201, conflict=True))
def register_runner(body: RegisterRunnerRequest) -> Response[str]:
    runner, token = enrollment.register_runner(body)
    metrics.add_metric(name="RunnersRegistered", unit="Count", value=1)
    return app.ok(enrollment.registered_view(runner, token), status=201)


handler = lambda_handler(app)
