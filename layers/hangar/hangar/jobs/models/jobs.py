"""Job requests and the job as each dialect shows it (`/v1` for users, `/api` for the runner agent)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from hangar.core.models import Labels, PathId, StrictModel, View

JobStatus = Literal["queued", "assigned", "running", "completed", "failed", "cancelled", "expired"]
ReportedStatus = Literal["running", "completed", "failed"]

ACTIVE_STATUSES: frozenset[str] = frozenset({"assigned", "running"})
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})

MAX_PAYLOAD_BYTES = 32 * 1024
MAX_RESULT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4096
MAX_TIMEOUT_SECONDS = 7 * 86400
MAX_QUEUE_TIMEOUT_SECONDS = 14 * 86400

# A job type is an identifier the agent dispatches on ("scan", "drift-check", ...).
JobType = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
# Repository references: free text without control characters.
RefText = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
# JSON numbers only: "3600" or true is not a number of seconds.
TimeoutSeconds = Annotated[int, Field(strict=True, ge=1, le=MAX_TIMEOUT_SECONDS)]
QueueTimeoutSeconds = Annotated[int, Field(strict=True, ge=1, le=MAX_QUEUE_TIMEOUT_SECONDS)]
MaxAttempts = Annotated[int, Field(strict=True, ge=1, le=10)]


class CreateJobRequest(StrictModel):
    type: JobType
    repositoryConfig: RefText | None = None
    repositoryName: RefText | None = None
    branch: RefText | None = None
    targetId: PathId | None = None
    labels: Labels = Field(default_factory=list)
    runnerId: PathId | None = None
    payload: dict[str, Any] | None = None
    timeoutSeconds: TimeoutSeconds = 3600
    maxAttempts: MaxAttempts = 3
    queueTimeoutSeconds: QueueTimeoutSeconds = 86400


class JobStatusRequest(StrictModel):
    jobId: PathId
    status: ReportedStatus
    result: dict[str, Any] | None = None
    error: Annotated[str, StringConstraints(max_length=MAX_ERROR_CHARS)] | None = None


class JobError(View):
    """Why a job failed or expired: a stable code and a human message (same shape as API errors)."""

    code: str
    message: str


class V1Job(View):
    """A job in the `/v1` dialect, plus what it was created with and its timestamps."""

    id: str
    status: JobStatus
    type: str
    repositoryConfig: str | None = None
    repositoryName: str | None = None
    branch: str | None = None
    targetId: str | None = None
    labels: list[str]
    runnerId: str | None = None
    pinnedRunnerId: str | None = None
    attempts: int
    maxAttempts: int
    result: dict[str, Any] | None = None
    error: JobError | None = None
    payload: dict[str, Any] | None = None
    timeoutSeconds: int
    queueTimeoutSeconds: int
    cancelRequested: bool = False
    # The job's log: UTF-8 bytes stored, and whether it reached its cap (`GET /v1/jobs/{jobId}/logs`).
    logBytes: int = 0
    truncated: bool = False
    createdAt: str
    updatedAt: str
    assignedAt: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None


class V1JobList(View):
    jobs: list[V1Job]
    nextCursor: str | None = None


class ApiJob(View):
    """The job a runner receives from a poll (`/api` dialect: `_id`, the originally published fields first)."""

    id: str = Field(alias="_id")
    type: str
    repositoryConfig: str | None = None
    repositoryName: str | None = None
    branch: str | None = None
    targetId: str | None = None
    labels: list[str]
    payload: dict[str, Any] | None = None
    timeoutSeconds: int
    attempts: int
    maxAttempts: int
    logBytes: int = 0
    truncated: bool = False


class PollResult(View):
    job: ApiJob | None
    pollIntervalSeconds: int


class JobStatusResult(View):
    jobId: str
    status: JobStatus
    cancelRequested: bool
