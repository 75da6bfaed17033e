"""PUT /v1/orgs/{orgId}/license — an operator sets a tenant's plan, state and overrides (admin:licenses).

The only cross-tenant route: `orgId` is any tenant, not the caller's. Partial update: fields left out
keep their value; an override set to null goes back to the plan's value.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from hangar.api.http import lambda_handler, v1_app
from hangar.core.observability import logger
from hangar.tenancy import licensing
from hangar.tenancy.models.licenses import LicenseView, OrgId, PutLicenseRequest

app = v1_app()


@app.put(
    "/v1/orgs/<orgId>/license",
    responses=app.responses(LicenseView, conflict=True),
    security=app.requires("admin:licenses"),
)
def put_org_license(orgId: Annotated[OrgId, Path()], body: PutLicenseRequest) -> Response[str]:
    operator = app.user()
    license_ = licensing.put_org_license(orgId, body)
    logger.info(
        "license changed",
        extra={
            "orgId": orgId,
            "operator": operator.subject,
            "operatorOrg": operator.org_id,
            "change": body.model_dump(exclude_unset=True),
        },
    )
    return app.ok(license_)


handler = lambda_handler(app)
