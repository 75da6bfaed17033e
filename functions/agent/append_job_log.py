"""POST /api/runners/jobs/logs — the assigned runner appends the next chunk of its job's stderr (chunk and log
size limits: docs/limits.md, "Job logs and artifacts"). Idempotent per `seq`; every 409 carries the `nextSeq`
the log expects; `cancelRequested` tells the runner its job was cancelled."""

from aws_lambda_powertools.event_handler import Response
from hangar.api.errors import JSON
from hangar.api.http import api_app, lambda_handler
from hangar.jobs import logs as job_logs
from hangar.jobs.models.logs import MAX_LOG_BODY_BYTES, ApiLogConflictBody, AppendLogRequest, LogAppended

app = api_app()

RESPONSES = app.responses(LogAppended, conflict=True)
RESPONSES[409] = {
    "description": "The chunk does not fit the log (out of order, other data for a stored seq, or the job is"
    " finished): `error.code` is `log_seq_conflict`, `error.nextSeq` the seq the log expects",
    "content": {JSON: {"model": ApiLogConflictBody}},
}
RESPONSES[413]["description"] = "`data` over 64 KiB (`error.field`), or the log is at its cap (`log_limit_reached`)"


@app.post("/api/runners/jobs/logs", responses=RESPONSES)
def append_job_log(body: AppendLogRequest) -> Response[str]:
    return app.ok(job_logs.append_chunk(app.runner(), body.jobId, body.seq, body.data))


# A chunk may be 64 KiB on its own; leave room for the rest of the body so the 413 names `data`.
handler = lambda_handler(app, max_body_bytes=MAX_LOG_BODY_BYTES)
