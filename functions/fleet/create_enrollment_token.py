"""POST /v1/runners/enrollment-tokens — a one-time `hge_` token for registering a runner (120 per
hour per tenant: docs/limits.md).

The body is optional: `{"name": "prod-runner-1", "ttlSeconds": 1800}`, both fields optional too."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from hangar.api.http import lambda_handler, v1_app
from hangar.fleet import enrollment
from hangar.fleet.models.enrollment import CreateEnrollmentTokenRequest, EnrollmentToken

app = v1_app()


@app.post(
    "/v1/runners/enrollment-tokens",
    responses=app.responses(EnrollmentToken, 201),
    security=app.requires("runners:manage"),
)
def create_enrollment_token(body: Annotated[CreateEnrollmentTokenRequest | None, Body()] = None) -> Response[str]:
    principal = app.user()
    request = body or CreateEnrollmentTokenRequest()
    created = enrollment.create_enrollment_token(principal.org_id, principal.subject, request.name, request.ttlSeconds)
    return app.ok(created, status=201)


handler = lambda_handler(app)
