"""GET /v1/audit-events — the tenant's audit log, newest first; `action` and `since` filter, `limit`/`cursor` page."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hangar.api.http import lambda_handler, v1_app
from hangar.audit import trail as audit
from hangar.audit.models.audit_events import ActionFilter, AuditEvent, AuditEventList, Since
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit

app = v1_app()


@app.get("/v1/audit-events", responses=app.responses(AuditEventList, page=True), security=app.requires("audit:read"))
def list_audit_events(
    action: Annotated[ActionFilter | None, Query()] = None,
    since: Annotated[Since | None, Query()] = None,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Response[str]:
    principal = app.user()
    items, next_cursor = audit.list_events(principal.org_id, limit, cursor, action=action, since=since)
    return app.ok(AuditEventList(events=[AuditEvent.model_validate(item) for item in items]), page=next_cursor)


handler = lambda_handler(app)
