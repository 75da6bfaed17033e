"""A job's log: its runner appends chunks of the command's stderr while it runs; users read them.

Who may add output (a log chunk here, an artifact in `hangar.jobs.artifacts`): only the runner the job is
assigned to, while the job is assigned or running, or cancelled but not yet acknowledged by that
runner (it is still winding the command down; it learns of the cancel from the answer). Every write
carries a ConditionCheck of the caller's token version (the same guard as every runner-route write),
so a regenerated token is refused even while the authorizer's cached Allow lives.

Appending: the chunks of one run of the job are numbered 0, 1, 2, ...; a chunk is stored only as the
next one (the job item holds the run's next seq, the log's byte count, cap and expiry), in ONE
transaction with those counters, so two senders of the same seq store one chunk and the counters never
drift. Repeating a stored seq with the same data is a no-op; anything else out of order is a 409
`log_seq_conflict` with the `nextSeq` the log expects. A job run again after its runner was lost
starts a new run of seqs after the old ones, and the log shows both runs in order.

Costs per chunk: one consistent GetItem of the job and one TransactWriteItems (chunk Put, job Update,
runner ConditionCheck); `make bench` prints the dollars per GiB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hangar.core import clock
from hangar.core.config import get_settings
from hangar.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from hangar.core.observability import metrics
from hangar.identity.auth import RunnerPrincipal, require_current_runner_token
from hangar.identity.credentials import current_runner
from hangar.jobs.models.jobs import ACTIVE_STATUSES, TERMINAL_STATUSES
from hangar.jobs.models.logs import MAX_LOG_CHUNK_BYTES, LogAppended, LogChunk, V1JobLog
from hangar.jobs.outputs import expiry_epoch, log_expired
from hangar.store import artifact_objects
from hangar.store import job_outputs as output_store
from hangar.store import jobs as job_store
from hangar.store import runners as runner_store
from hangar.store.dynamo import apply, condition_check_op
from hangar.store.jobs import Job
from hangar.store.transactions import TransactionCancelled, transact

# A write is tried again (reading the job afresh) when the job changed between its read and its write.
WRITE_ATTEMPTS = 3
# A page of chunks stops once their data, as JSON, passes this: far under Lambda's 6 MB response.
PAGE_BUDGET_BYTES = 1024 * 1024
# The log as text is sent in the response up to this size as JSON-escaped text (what Lambda carries);
# a larger log is assembled in the artifacts bucket and the response redirects to it.
INLINE_TEXT_BYTES = 5_000_000
TEXT_PAGE_CHUNKS = 200
DOWNLOAD_URL_SECONDS = 900


# --- who may add output to a job (shared with hangar.jobs.artifacts) -------------------------------------


@dataclass(frozen=True)
class HeldJob:
    """A job of the calling runner, as read: whether it still takes output, and whether it was cancelled
    (then it takes output only until the runner acknowledges the cancel)."""

    job: Job
    cancelled: bool
    finished: bool


def held_job(principal: RunnerPrincipal, job_id: str) -> HeldJob:
    """The job, read consistently; 404 when it is not (or no longer) this runner's."""
    job = job_store.get_job(principal.org_id, job_id)
    if job is None or job.runner_id != principal.runner_id:
        runner_may_write(principal, job_id, cancelled=False)  # a revoked token hears that first
        raise NotFound(f"Job {job_id} not found")
    status = job.status
    return HeldJob(job, cancelled=status == "cancelled", finished=status not in ACTIVE_STATUSES | {"cancelled"})


def runner_may_write(principal: RunnerPrincipal, job_id: str, cancelled: bool) -> bool:
    """For a refusal that writes nothing: 401 when the caller's token was regenerated (or its runner
    deleted); False when the job was cancelled and the runner has acknowledged it."""
    runner = current_runner(principal)
    return not cancelled or job_id in runner.cancelled_jobs


def held_condition(principal: RunnerPrincipal, held: HeldJob) -> tuple[str, dict[str, Any]]:
    """The job-side condition of an output write: still this runner's, the same run, still taking output."""
    values: dict[str, Any] = {"me": principal.runner_id, "attempt": held.job.attempts}
    if held.cancelled:
        values["cancelled"] = "cancelled"
        return "#runnerId = :me AND #attempts = :attempt AND #status = :cancelled", values
    values.update(assigned="assigned", running="running")
    return "#runnerId = :me AND #attempts = :attempt AND #status IN (:assigned, :running)", values


def runner_guard_op(principal: RunnerPrincipal, job_id: str, cancelled: bool) -> dict[str, Any]:
    """The runner-side ConditionCheck: the caller's token version (and, for a cancelled job, the cancel
    not yet acknowledged)."""
    condition = runner_store.TOKEN_GUARD + (" AND contains(#cancelledJobs, :jobId)" if cancelled else "")
    values: dict[str, Any] = {"tokenVersion": principal.token_version}
    if cancelled:
        values["jobId"] = job_id
    return condition_check_op(
        runner_store.table(), runner_store.runner_key(principal.org_id, principal.runner_id), condition, values
    )


class WriteOutcome(Enum):
    WRITTEN = "written"
    ACKNOWLEDGED = "acknowledged"  # the job was cancelled and its runner has said it stopped
    CHANGED = "changed"  # the job (or the item) changed since it was read: read again


def transact_output(principal: RunnerPrincipal, operations: dict[str, dict[str, Any]]) -> WriteOutcome:
    """Runs an output write whose operation named "runner" is `runner_guard_op`; a revoked token is 401."""
    try:
        transact(operations)
    except TransactionCancelled as cancelled:
        runner = cancelled["runner"]
        if runner.condition_failed:
            require_current_runner_token(principal, runner_store.runner_from(runner.item))  # else: acknowledged
            return WriteOutcome.ACKNOWLEDGED
        return WriteOutcome.CHANGED
    return WriteOutcome.WRITTEN


# --- appending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogState:
    """The log's counters on the job item: the current run's next seq, bytes stored, cap reached, expiry."""

    attempt: int
    started: bool  # the current run (attempt) has stored a chunk
    next_seq: int
    size: int
    truncated: bool
    expires_at: int | None


def log_state(job: Job) -> LogState:
    started = job.log_attempt == job.attempts
    return LogState(
        attempt=job.attempts,
        started=started,
        next_seq=job.log_next_seq if started else 0,
        size=job.log_bytes,
        truncated=job.log_truncated,
        expires_at=job.log_expires_at_epoch,
    )


def _seq_conflict(message: str, next_seq: int) -> Conflict:
    return Conflict(message, code="log_seq_conflict", details={"nextSeq": next_seq})


def _closed(job_id: str, status: str, next_seq: int) -> Conflict:
    return _seq_conflict(f"Job {job_id} is {status}: its log takes no more chunks", next_seq)


def _utf8(data: str) -> bytes:
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("data: not valid UTF-8 text (a lone surrogate)", field="data") from None


def append_chunk(principal: RunnerPrincipal, job_id: str, seq: int, data: str) -> LogAppended:
    """Stores chunk `seq` of the job's current run (see the module docstring for every refusal)."""
    payload = _utf8(data)
    if len(payload) > MAX_LOG_CHUNK_BYTES:
        raise PayloadTooLarge(
            f"data is {len(payload)} bytes of UTF-8; a chunk holds at most {MAX_LOG_CHUNK_BYTES // 1024} KiB",
            field="data",
        )
    cap = get_settings().job_log_max_bytes
    state = LogState(0, False, 0, 0, False, None)
    for _ in range(WRITE_ATTEMPTS):
        held = held_job(principal, job_id)
        state = log_state(held.job)
        if held.finished:
            runner_may_write(principal, job_id, cancelled=False)
            raise _closed(job_id, held.job.status, state.next_seq)
        if seq != state.next_seq or state.truncated or state.size + len(payload) > cap:
            return _refuse_or_replay(principal, held, state, seq, data, len(payload), cap)
        outcome = _store_chunk(principal, held, state, seq, payload, cap)
        if outcome is WriteOutcome.WRITTEN:
            metrics.add_metric(name="LogBytesStored", unit="Bytes", value=len(payload))
            return LogAppended(nextSeq=seq + 1, cancelRequested=held.cancelled)
        if outcome is WriteOutcome.ACKNOWLEDGED:
            raise _closed(job_id, "cancelled", state.next_seq)
    raise _seq_conflict(f"The log of job {job_id} kept changing; send nextSeq", state.next_seq)


def _refuse_or_replay(
    principal: RunnerPrincipal, held: HeldJob, state: LogState, seq: int, data: str, size: int, cap: int
) -> LogAppended:
    """A chunk that is not simply the next one: a repeat (no-op), a conflict, or past the cap."""
    job_id = held.job.job_id
    if not runner_may_write(principal, job_id, held.cancelled):
        raise _closed(job_id, "cancelled", state.next_seq)
    if seq < state.next_seq:
        stored = output_store.get_chunk(principal.org_id, job_id, state.attempt, seq)
        if stored is not None and stored.data == data:
            return LogAppended(nextSeq=state.next_seq, cancelRequested=held.cancelled)
        raise _seq_conflict(f"Chunk {seq} of job {job_id} is stored with other data", state.next_seq)
    if seq > state.next_seq:
        raise _seq_conflict(f"Chunk {seq} of job {job_id} is out of order: send {state.next_seq}", state.next_seq)
    if not state.truncated:
        _mark_truncated(principal, held)
    raise PayloadTooLarge(
        f"The log of job {job_id} is at its cap of {cap} bytes and truncated; the job itself carries on",
        code="log_limit_reached",
    )


def _mark_truncated(principal: RunnerPrincipal, held: HeldJob) -> None:
    condition, values = held_condition(principal, held)
    apply(
        job_store.job_update(
            principal.org_id,
            held.job.job_id,
            set={"logTruncated": True},
            condition=condition,
            values=values,
        ),
        return_new=False,
    )


def _store_chunk(
    principal: RunnerPrincipal, held: HeldJob, state: LogState, seq: int, payload: bytes, cap: int
) -> WriteOutcome:
    org_id, job_id = principal.org_id, held.job.job_id
    now = clock.now()
    expires_at = state.expires_at if state.expires_at is not None else expiry_epoch(now)
    condition, values = held_condition(principal, held)
    if state.started:
        condition += " AND #logAttempt = :attempt AND #logNextSeq = :seq"
        values["seq"] = seq
    else:
        condition += " AND (attribute_not_exists(#logAttempt) OR #logAttempt <> :attempt)"
    condition += " AND attribute_not_exists(#logTruncated) AND (attribute_not_exists(#logBytes) OR #logBytes <= :room)"
    values.update(room=cap - len(payload), expires=expires_at)
    operations = {
        "chunk": output_store.put_chunk_op(org_id, job_id, state.attempt, seq, payload, clock.iso(now), expires_at),
        "job": job_store.job_update(
            org_id,
            job_id,
            set={"logAttempt": state.attempt, "logNextSeq": seq + 1},
            set_expressions=["#logExpiresAtEpoch = if_not_exists(#logExpiresAtEpoch, :expires)"],
            add={"logBytes": len(payload)},
            condition=condition,
            values=values,
        ).op(),
        "runner": runner_guard_op(principal, job_id, held.cancelled),
    }
    return transact_output(principal, operations)


# --- reading -----------------------------------------------------------------------------------------


def _job(org_id: str, job_id: str) -> Job:
    job = job_store.get_job(org_id, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found")
    return job


def output_closed(job: Job) -> bool:
    """No chunk can be added any more: the job is terminal and, if it was cancelled while a runner held
    it, that runner has acknowledged the cancel (or is gone). Read BEFORE the chunks, so that what is
    read after it is the whole log."""
    if job.status not in TERMINAL_STATUSES:
        return False
    if job.status != "cancelled" or not job.runner_id:
        return True
    runner = runner_store.get_runner(job.org_id, job.runner_id)
    return runner is None or job.job_id not in runner.cancelled_jobs


def _json_size(text: str) -> int:
    """Bytes `text` takes inside a JSON document (ASCII-escaped, as the worst case)."""
    return len(json.dumps(text))


def read_log(org_id: str, job_id: str, cursor: str | None, limit: int) -> V1JobLog:
    """One page of the job's log after `cursor` (at most `limit` chunks, and about 1 MiB)."""
    job = _job(org_id, job_id)
    if log_expired(job):
        return V1JobLog(
            jobId=job_id, chunks=[], nextCursor=None, complete=job.status in TERMINAL_STATUSES, truncated=False
        )
    closed = output_closed(job)
    stored, more = output_store.read_chunks(org_id, job_id, cursor, limit)
    chunks: list[LogChunk] = []
    size = 0
    for index, chunk in enumerate(stored):
        size += _json_size(chunk.data)
        if chunks and size > PAGE_BUDGET_BYTES:
            stored, more = stored[:index], True
            break
        chunks.append(LogChunk(seq=chunk.seq, data=chunk.data, at=chunk.at))
    complete = closed and not more
    next_cursor = output_store.chunk_cursor(org_id, job_id, stored[-1]) if stored else cursor
    return V1JobLog(
        jobId=job_id,
        chunks=chunks,
        nextCursor=None if complete else next_cursor,
        complete=complete,
        truncated=job.log_truncated,
    )


@dataclass(frozen=True)
class LogText:
    """The log as text: `text`, or (too large for a response) `download_url` of the assembled log."""

    text: str
    complete: bool
    truncated: bool
    next_cursor: str | None
    download_url: str | None = None


def read_log_text(org_id: str, job_id: str, cursor: str | None) -> LogText:
    """Everything after `cursor` (the whole log without one) as one text."""
    job = _job(org_id, job_id)
    truncated = job.log_truncated and not log_expired(job)
    if log_expired(job):
        return LogText("", job.status in TERMINAL_STATUSES, False, None)
    closed = output_closed(job)
    parts: list[str] = []
    cuts: list[str] = []  # the cursor after each part
    size, inline_parts, position, more = 0, 0, cursor, True
    while more:
        chunks, more = output_store.read_chunks(org_id, job_id, position, TEXT_PAGE_CHUNKS)
        for chunk in chunks:
            parts.append(chunk.data)
            cuts.append(output_store.chunk_cursor(org_id, job_id, chunk))
            size += _json_size(chunk.data)
            if size <= INLINE_TEXT_BYTES:
                inline_parts = len(parts)
        if chunks:
            position = cuts[-1]
    if inline_parts == len(parts):
        return LogText("".join(parts), closed, truncated, None if closed else position)
    if cursor is None:
        url = _assembled_log_url(job, "".join(parts).encode("utf-8"), position)
        return LogText("", closed, truncated, None if closed else position, download_url=url)
    # Following from a cursor: as much as one response holds; the cursor continues from there.
    return LogText("".join(parts[:inline_parts]), False, truncated, cuts[inline_parts - 1] if inline_parts else cursor)


def _assembled_log_url(job: Job, text: bytes, position: str | None) -> str:
    """A presigned GET of the whole log as one object, written again only when the log has grown."""
    key = artifact_objects.log_text_key(job.org_id, job.job_id)
    version = {"log-bytes": str(len(text)), "log-position": position or ""}
    if artifact_objects.object_metadata(key) != version:
        artifact_objects.put_text(key, text, version)
    return artifact_objects.presigned_get(key, DOWNLOAD_URL_SECONDS)
