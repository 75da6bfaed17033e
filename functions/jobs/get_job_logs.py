"""GET /v1/jobs/{jobId}/logs — the job's log: pages of chunks after `cursor` (JSON), or the whole log as
text (`?format=text` or `Accept: text/plain`). `complete` once the job is terminal and all is read."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from hangar.api.http import lambda_handler, v1_app
from hangar.core.models import DEFAULT_PAGE_SIZE, Cursor, PageLimit, PathId
from hangar.jobs import logs as job_logs
from hangar.jobs.models.logs import LogFormat, V1JobLog

app = v1_app()

TEXT = "text/plain; charset=utf-8"
STATE_HEADERS = {
    "Hangar-Log-Complete": "`true` once the job is terminal and this is the rest of its log",
    "Hangar-Log-Truncated": "`true` when the log reached its cap",
    "Hangar-Log-Cursor": "where to continue (`cursor`) for what the job writes next; absent when complete",
}
RESPONSES = app.responses(V1JobLog, page=True, description="A page of chunks (JSON), or the log as text")
RESPONSES[200]["content"]["text/plain"] = {"schema": {"type": "string"}}
RESPONSES[303] = {
    "description": "As text, a log too large for one response: `Location` is a download URL (15 minutes)",
    "headers": {"Location": {"description": "Presigned download URL of the whole log", "schema": {"type": "string"}}},
}


def wants_text(format: str | None, accept: str | None) -> bool:
    """`format` decides; without it, an Accept header that ranks text/plain above JSON (a tie is JSON)."""
    if format is not None:
        return format == "text"
    quality: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *parameters = (piece.strip().lower() for piece in part.split(";"))
        weight = next((parameter[2:] for parameter in parameters if parameter.startswith("q=")), "1")
        try:
            quality[media] = float(weight)
        except ValueError:
            continue
    json_quality = quality.get("application/json", quality.get("application/*", quality.get("*/*", 0.0)))
    return quality.get("text/plain", 0.0) > json_quality


def _state_headers(log: job_logs.LogText) -> dict[str, str]:
    headers = {
        "Hangar-Log-Complete": str(log.complete).lower(),
        "Hangar-Log-Truncated": str(log.truncated).lower(),
        "Cache-Control": "no-store",
    }
    if log.next_cursor:
        headers["Hangar-Log-Cursor"] = log.next_cursor
    return headers


@app.get("/v1/jobs/<jobId>/logs", responses=RESPONSES, security=app.requires("jobs:read"))
def get_job_logs(
    jobId: Annotated[PathId, Path()],
    cursor: Annotated[Cursor | None, Query()] = None,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE_SIZE,
    format: Annotated[LogFormat | None, Query()] = None,
) -> Response[str]:
    principal = app.user()
    if not wants_text(format, app.current_event.headers.get("accept")):
        return app.ok(job_logs.read_log(principal.org_id, jobId, cursor, limit))
    log = job_logs.read_log_text(principal.org_id, jobId, cursor)
    if log.download_url is not None:
        return Response(status_code=303, headers={"Location": log.download_url, **_state_headers(log)}, body="")
    return Response(status_code=200, content_type=TEXT, body=log.text, headers=_state_headers(log))


handler = lambda_handler(app)
