"""A job's stderr streamed to Hangar as its log (``POST /api/runners/jobs/logs``), never slowing the job.

The job's stderr reader hands each block it reads to :meth:`LogStream.feed`, which only decodes it and
appends it to a bounded in-memory spool. A sender thread turns the spool into chunks, in order:

* a chunk goes when 64 KiB of UTF-8 is waiting, or at most once a second for less, and at the end;
* chunk ``seq`` numbers count from 0; a chunk is retried with the same ``seq`` and data after a network
  error or a 5xx (the server stores a repeated chunk once), and a 409 ``log_seq_conflict`` resumes from
  the ``nextSeq`` it names;
* a 413 ``log_limit_reached`` (the job's log is full) stops the stream for good; the job carries on;
* ``cancelRequested: true`` in an answer cancels the job, as a heartbeat's ``cancelledJobs`` does.

When the server is slower than the job, the spool fills up: what no longer fits is dropped (never the
job blocked), and once there is room again the log gets a line saying how much was dropped.
"""

from __future__ import annotations

import codecs
import collections
import json
import threading
import time
from collections.abc import Callable

from hangar_agent import log
from hangar_agent.api import ApiClient, Response, TokenRejectedError

LOGS_PATH = "/api/runners/jobs/logs"
CHUNK_BYTES = 64 * 1024  # the route's limit on `data`, in UTF-8 bytes
# The route's body limit is 72 KiB: JSON escapes (control characters grow up to 6x) must fit in it too.
MAX_BODY_DATA_BYTES = 71 * 1024
FLUSH_INTERVAL_SECONDS = 1.0
DEFAULT_SPOOL_BYTES = 8 * 1024 * 1024
# Log chunks share the runner's 120 requests a minute with heartbeats, polls and status reports: the
# agent as a whole sends at most one every 0.75 s (80 a minute), whatever the number of jobs running.
LOG_REQUEST_SPACING_SECONDS = 0.75
MAX_RESYNCS = 3  # 409s in a row for one chunk before the stream gives up
MAX_REJECTED_CHUNKS = 5  # other refusals (4xx) before the stream gives up
LIMIT_REACHED = "log_limit_reached"
SEQ_CONFLICT = "log_seq_conflict"


class RequestPacer:
    """Spaces requests shared by several threads at least ``spacing`` seconds apart."""

    def __init__(self, spacing: float) -> None:
        self._spacing = spacing
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, abort: threading.Event) -> bool:
        """Wait for this caller's turn; False if ``abort`` was set meanwhile."""
        with self._lock:
            now = time.monotonic()
            turn = max(now, self._next)
            self._next = turn + self._spacing
        delay = turn - now
        if delay > 0:
            return not abort.wait(delay)
        return not abort.is_set()


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding has at most ``limit`` bytes."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    # Cutting the bytes may split the last character: "ignore" drops that partial sequence.
    return encoded[:limit].decode("utf-8", errors="ignore")


def json_len(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def next_seq_of(resp: Response) -> int | None:
    """The ``nextSeq`` of a 200 (``data.nextSeq``) or of a 409 ``log_seq_conflict`` (``error.nextSeq``)."""
    if not isinstance(resp.body, dict):
        return None
    holder = resp.body.get("data") if resp.ok else resp.body.get("error")
    value = holder.get("nextSeq") if isinstance(holder, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class LogStream:
    """One job's log: fed from the job's stderr reader, sent by its own thread."""

    def __init__(
        self,
        client: ApiClient,
        job_id: str,
        *,
        pacer: RequestPacer,
        on_cancel: Callable[[], None],
        on_token_rejected: Callable[[], None],
        spool_bytes: int = DEFAULT_SPOOL_BYTES,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self.job_id = job_id
        self._client = client
        self._pacer = pacer
        self._on_cancel = on_cancel
        self._on_token_rejected = on_token_rejected
        self._spool_limit = max(CHUNK_BYTES, spool_bytes)
        self._flush_interval = flush_interval

        self._cond = threading.Condition()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces: collections.deque[str] = collections.deque()
        self._spooled = 0  # UTF-8 bytes in _pieces
        self._at_line_start = True
        self._closed = False
        self._stopped: str | None = None  # why nothing more is sent
        self._abort = threading.Event()
        self._done = threading.Event()
        self._next_send_at = 0.0
        self._seq = 0
        self._dropping_bytes = 0  # dropped since the last marker
        self._dropping_lines = 0
        self._rejected = 0
        self.cancel_requested = False
        self.sent_bytes = 0
        self.dropped_bytes = 0
        self._thread = threading.Thread(target=self._run, name=f"log-{job_id}", daemon=True)

    # ------------------------------------------------------------------ the job's side (never blocks)

    def start(self) -> None:
        self._thread.start()

    def feed(self, data: bytes) -> None:
        """Append a block of the job's stderr (called from its reader thread)."""
        with self._cond:
            if self._closed or self._stopped is not None:
                return
            text = self._decoder.decode(data)
            if text:
                self._append(text)

    def close(self) -> None:
        """The job's stderr ended: what is spooled is sent, then the sender ends."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._stopped is None:
                tail = self._decoder.decode(b"", final=True)
                if tail:
                    self._append(tail)
                if self._dropping_bytes:
                    self._push(self._drop_marker())
            self._cond.notify_all()

    def finish(self, timeout: float) -> bool:
        """Close, then wait up to ``timeout`` seconds for everything spooled to be sent (True if it was)."""
        self.close()
        if self._done.wait(timeout):
            return True
        self.abort()
        return False

    def abort(self) -> None:
        """Stop sending now (what is still spooled is lost)."""
        self._abort.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def unsent_bytes(self) -> int:
        with self._cond:
            return self._spooled

    # ------------------------------------------------------------------ spool

    def _push(self, text: str, size: int | None = None) -> None:
        self._pieces.append(text)
        self._spooled += utf8_len(text) if size is None else size
        self._at_line_start = text.endswith("\n")
        self._cond.notify_all()

    def _append(self, text: str) -> None:
        size = utf8_len(text)
        if self._spooled + size > self._spool_limit:
            if not self._dropping_bytes:
                log.warning("job_log_dropping", job=self.job_id, spool_bytes=self._spool_limit)
            self._dropping_bytes += size
            self._dropping_lines += text.count("\n")
            return
        if self._dropping_bytes:
            self._push(self._drop_marker())
        self._push(text, size)

    def _drop_marker(self) -> str:
        dropped, lines = self._dropping_bytes, self._dropping_lines
        self.dropped_bytes += dropped
        self._dropping_bytes = self._dropping_lines = 0
        log.warning("job_log_dropped", job=self.job_id, bytes=dropped, lines=lines)
        lead = "" if self._at_line_start else "\n"
        return (
            f"{lead}[hangar-agent] {dropped} bytes ({lines} lines) of this job's output were dropped here: "
            "the Hangar API did not keep up with it\n"
        )

    def _next_chunk(self) -> str | None:
        """Wait until a chunk is due (64 KiB waiting, the flush interval passed, or the end); None: no more"""
        with self._cond:
            while True:
                if self._stopped is not None or self._abort.is_set():
                    return None
                if self._spooled >= CHUNK_BYTES or (self._closed and self._pieces):
                    break
                wait: float | None = None
                if self._pieces:
                    wait = self._next_send_at - time.monotonic()
                    if wait <= 0:
                        break
                elif self._closed:
                    return None
                self._cond.wait(wait)
            self._next_send_at = time.monotonic() + self._flush_interval
            return self._take_chunk()

    def _take_chunk(self) -> str:
        parts: list[str] = []
        size = 0
        while self._pieces and size < CHUNK_BYTES:
            piece = self._pieces.popleft()
            piece_size = utf8_len(piece)
            if size + piece_size > CHUNK_BYTES:
                # Split at a character boundary; the rest starts the next chunk.
                head = utf8_prefix(piece, CHUNK_BYTES - size) or (piece[:1] if not parts else "")
                self._pieces.appendleft(piece[len(head) :])
                head_size = utf8_len(head)
                parts.append(head)
                self._spooled -= head_size
                break
            parts.append(piece)
            size += piece_size
            self._spooled -= piece_size
        chunk = "".join(parts)
        # Escapes (control characters: up to 6 bytes each) must not push the body past the route's limit.
        while len(chunk) > 1 and json_len(chunk) > MAX_BODY_DATA_BYTES:
            keep = max(1, len(chunk) * MAX_BODY_DATA_BYTES // json_len(chunk) - 16)
            rest = chunk[keep:]
            self._pieces.appendleft(rest)
            self._spooled += utf8_len(rest)
            chunk = chunk[:keep]
        return chunk

    # ------------------------------------------------------------------ sender

    def _stop(self, reason: str) -> None:
        with self._cond:
            if self._stopped is None:
                self._stopped = reason
            self._pieces.clear()
            self._spooled = 0
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                chunk = self._next_chunk()
                if chunk is None:
                    return
                if not self._pacer.wait(self._abort):
                    return
                self._send(chunk)
        except TokenRejectedError:
            self._stop("runner token rejected")
            self._on_token_rejected()
        except Exception as exc:  # never let the sender die silently: the job carries on without its log
            log.error("job_log_error", job=self.job_id, error=f"{type(exc).__name__}: {exc}")
            self._stop("agent error")
        finally:
            self._done.set()

    def _send(self, chunk: str) -> None:
        resyncs = 0
        while True:
            body = {"jobId": self.job_id, "seq": self._seq, "data": chunk}
            resp = self._client.call(LOGS_PATH, body, kind="logs", abort=self._abort)
            if resp is None:  # aborted: the job ended and the flush ran out of time, or the agent stops
                self._stop("aborted")
                return
            if resp.ok:
                self._accepted(resp, chunk)
                return
            if resp.status == 409:
                next_seq = next_seq_of(resp)
                if next_seq is not None and next_seq != self._seq and resyncs < MAX_RESYNCS:
                    # Another sender's chunk holds this seq, or the server expects another one: resume there.
                    log.warning("job_log_resync", job=self.job_id, seq=self._seq, next_seq=next_seq)
                    self._seq = next_seq
                    resyncs += 1
                    continue
                # The server expects exactly this seq and still refuses: the job takes no more log.
                log.info("job_log_closed_by_server", job=self.job_id, code=resp.error_code())
                self._stop("job no longer takes log chunks")
                return
            if resp.status == 413 and resp.error_code() == LIMIT_REACHED:
                log.warning("job_log_limit_reached", job=self.job_id, sent_bytes=self.sent_bytes)
                self._stop(LIMIT_REACHED)
                return
            if resp.status == 404:
                # Not this runner's job any more (the status report says so too), or a server without logs.
                log.info("job_log_closed_by_server", job=self.job_id, code=resp.error_code())
                self._stop("job not found")
                return
            # Any other refusal is about this chunk: drop it, keep the seq for the next one.
            self._rejected += 1
            log.warning(
                "job_log_chunk_rejected",
                job=self.job_id,
                http=resp.status,
                code=resp.error_code(),
                msg=resp.error_message(),
            )
            if self._rejected >= MAX_REJECTED_CHUNKS:
                self._stop("chunks rejected")
            return

    def _accepted(self, resp: Response, chunk: str) -> None:
        next_seq = next_seq_of(resp)
        self._seq = next_seq if next_seq is not None and next_seq > self._seq else self._seq + 1
        self.sent_bytes += utf8_len(chunk)
        if resp.data().get("cancelRequested") is True and not self.cancel_requested:
            self.cancel_requested = True
            self._on_cancel()
