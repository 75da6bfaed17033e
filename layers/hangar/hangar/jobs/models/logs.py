"""A job's log: the chunks a runner sends (`/api` dialect) and the pages a user reads (`/v1` dialect)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hangar.core.models import PathId, StrictModel, View

# A chunk's `data` is at most this many bytes of UTF-8 (checked on the bytes: a 413 naming `data`).
MAX_LOG_CHUNK_BYTES = 64 * 1024
# The route's body limit: a 64 KiB chunk and the rest of the body (as for status reports).
MAX_LOG_BODY_BYTES = 72 * 1024
# Chunks of one run are numbered 0, 1, 2, ...; a billion one-second chunks is 31 years of output.
MAX_LOG_SEQ = 999_999_999

LogSeq = Annotated[int, Field(strict=True, ge=0, le=MAX_LOG_SEQ)]
LogFormat = Literal["json", "text"]


class AppendLogRequest(StrictModel):
    jobId: PathId
    seq: LogSeq
    # No `max_length` (nor a schema `maxLength`): the limit is on UTF-8 bytes and answered 413 naming
    # `data`, as for a job's `result`; a character count would be a 400 and let 4-byte text through.
    data: Annotated[str, Field(description="Text of the job's stderr, at most 64 KiB (65,536 bytes) of UTF-8")]


class LogAppended(View):
    """The runner's answer: which `seq` to send next, and whether the job was cancelled meanwhile."""

    nextSeq: int
    cancelRequested: bool


class LogConflictDetail(View):
    code: str
    message: str
    nextSeq: int


class ApiLogConflictBody(View):
    """Every 409 of `POST /api/runners/jobs/logs`: the chunk does not fit the log; send `nextSeq`."""

    success: Literal[False] = False
    error: LogConflictDetail


class LogChunk(View):
    seq: int
    data: str
    at: str


class V1JobLog(View):
    """One page of a job's log. `complete`: the job is terminal and every chunk has been read;
    `nextCursor` continues after the last chunk returned (pass it to follow a running job)."""

    jobId: str
    chunks: list[LogChunk]
    nextCursor: str | None = None
    complete: bool
    truncated: bool
