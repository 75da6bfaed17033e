"""An in-process fake Hangar for the agent's tests: the runner protocol, plus job logs and artifacts with the
semantics the API design specifies for them, and a fake S3 for the presigned uploads.

Logs (`POST /api/runners/jobs/logs`): only while the job is assigned or running (a cancelled job keeps
taking chunks until its runner reports it, answering `cancelRequested: true`), chunks numbered from 0, a
repeated chunk with the same data is a no-op, any other conflict is 409 `log_seq_conflict` with `nextSeq`
in the error, `data` over 64 KiB of UTF-8 is 413 naming `data`, past the job's cap 413 `log_limit_reached`
and the log is `truncated`.

Artifacts (`POST /api/runners/jobs/artifacts`): a presigned PUT URL into the fake S3, bound to the
declared size: S3 refuses (403 SignatureDoesNotMatch) a PUT whose Content-Length or Content-Type differs
from what was signed, and (400 IncompleteBody) one whose body is shorter than its Content-Length.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG_CHUNK_LIMIT = 64 * 1024
DROP_CONNECTION = 0  # a handler status meaning: close the connection without answering
SEQ_CONFLICT = "log_seq_conflict"


@dataclass
class FakeArtifact:
    artifact_id: str
    job_id: str
    name: str
    content_type: str
    size: int
    signed_size: int  # what the presigned URL is bound to (the declared size, unless a test says otherwise)
    data: bytes | None = None
    put_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeJob:
    job: dict[str, Any]
    status: str = "queued"
    cancelled: bool = False
    cancel_before_running: bool = False
    requeued: bool = False  # the sweeper gave it back to the queue: final reports are 404 (Hangar's answer)
    result: Any = None
    error: str | None = None
    log_chunks: list[str] = field(default_factory=list)
    truncated: bool = False
    artifacts: list[FakeArtifact] = field(default_factory=list)

    @property
    def log_text(self) -> str:
        return "".join(self.log_chunks)

    @property
    def log_bytes(self) -> int:
        return sum(len(chunk.encode()) for chunk in self.log_chunks)


@dataclass
class Request:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, Any, dict[str, str]]:
    return status, {"success": False, "error": {"code": code, "message": message, **extra}}, {}


def _ok(data: Any, status: int = 200) -> tuple[int, Any, dict[str, str]]:
    return status, {"success": True, "data": data}, {}


@dataclass
class FakeHangar:
    heartbeat_interval: float = 1
    poll_interval: float = 1
    enrollment_token: str = "hge_" + "e" * 24
    runner_token: str = field(default_factory=lambda: "hgr_" + secrets.token_hex(20))
    runner_id: str = "runner_abc123"
    poll_429: int = 0
    poll_503: int = 0
    retry_after: str = "1"
    heartbeat_401: bool = False
    offline_refused: bool = False  # a Hangar that predates the `offline` heartbeat: 400 for it
    heartbeat_reports_cancels: bool = True
    # logs
    log_cap: int = 10 * 1024 * 1024
    log_gate: threading.Event | None = None  # while set to an unset Event, log requests wait: a slow server
    log_drop_response_seqs: set[int] = field(default_factory=set)  # store the chunk, then lose the answer
    log_503: int = 0
    cancel_on_first_log: bool = False
    # artifacts
    max_artifacts: int = 20
    max_artifact_bytes: int = 100 * 1024 * 1024
    signed_size_delta: int = 0  # presigned URLs bound to size + delta (a server that signed the wrong size)
    s3_503: int = 0
    omit_upload_content_type: bool = False  # presign without Content-Type: the returned headers lack it
    on_artifact_created: Callable[[FakeArtifact], None] | None = None

    queue: list[str] = field(default_factory=list)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    artifacts: dict[str, FakeArtifact] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""
    last_heartbeat_at: str | None = None

    @property
    def token_prefix(self) -> str:
        return self.runner_token[:8]

    # -- test-side helpers
    def enqueue(self, payload: Any = None, **extra: Any) -> str:
        job_id = "job_" + secrets.token_hex(4)
        job = {
            "_id": job_id,
            "type": "build",
            "repositoryConfig": {"provider": "github"},
            "repositoryName": "acme/widgets",
            "branch": "main",
            "targetId": "target_1",
            "labels": ["linux"],
            "payload": payload,
            "timeoutSeconds": 60,
            "attempts": 1,
        }
        job.update(extra)
        with self.cond:
            self.jobs[job_id] = FakeJob(job=job)
            self.queue.append(job_id)
            self.cond.notify_all()
        return job_id

    def running_job(self) -> str:
        """A job already assigned to this runner and running (for tests that drive the routes directly)."""
        job_id = self.enqueue(None)
        with self.cond:
            self.queue.remove(job_id)
            self.jobs[job_id].status = "running"
        return job_id

    def cancel(self, job_id: str) -> None:
        with self.cond:
            self.jobs[job_id].cancelled = True

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, 0.1))
        return True

    def reports(self, job_id: str) -> list[dict[str, Any]]:
        with self.cond:
            return [r.body for r in self.requests if r.path == "/api/runners/jobs/status" and r.body["jobId"] == job_id]

    def final_reports(self, job_id: str) -> list[dict[str, Any]]:
        return [r for r in self.reports(job_id) if r["status"] in ("completed", "failed")]

    def of(self, path: str) -> list[Request]:
        with self.cond:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def log_requests(self, job_id: str) -> list[dict[str, Any]]:
        return [r.body for r in self.of("/api/runners/jobs/logs") if r.body.get("jobId") == job_id]

    # -- server-side
    def handle(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path == "/api/runners/jobs/logs" and self.log_gate is not None:
            self.log_gate.wait(60)  # outside the lock: other routes keep answering
        with self.cond:
            self.requests.append(Request(method, path, body, headers, time.monotonic()))
            self.cond.notify_all()
            if path == "/v1/runners/register":
                return self._register(body)
            if headers.get("x-runner-token") != self.runner_token:
                return _error(401, "unauthorized", "bad runner token")
            route = {
                ("POST", "/api/runners/heartbeat"): self._heartbeat,
                ("POST", "/api/runners/jobs"): self._poll,
                ("POST", "/api/runners/jobs/status"): self._status,
                ("POST", "/api/runners/jobs/logs"): self._logs,
                ("POST", "/api/runners/jobs/artifacts"): self._create_artifact,
                ("GET", "/api/runners/me"): self._me,
            }.get((method, path))
            if route is None:
                return _error(404, "not_found", f"No route {method} {path}")
            return route(body)

    def _register(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if body.get("token") != self.enrollment_token:
            return 401, {"error": {"code": "token_invalid", "message": "Enrollment token is invalid"}}, {}
        runner = {
            "id": self.runner_id,
            "name": body.get("name", "runner-1"),
            "labels": body.get("labels", []),
            "configuredConcurrency": body.get("configuredConcurrency", 1),
            "tokenPrefix": self.token_prefix,
            "status": "offline",
        }
        payload = {
            "runner": runner,
            "token": self.runner_token,
            "heartbeatIntervalSeconds": self.heartbeat_interval,
            "pollIntervalSeconds": self.poll_interval,
        }
        return 201, payload, {}

    def _heartbeat(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.heartbeat_401:
            return _error(401, "unauthorized", "token regenerated")
        if isinstance(body, dict) and body.get("status") == "offline":
            if self.offline_refused:
                return _error(400, "validation_error", "status: Input should be 'online' or 'busy'", field="status")
            return _ok({"status": "offline", "heartbeatIntervalSeconds": self.heartbeat_interval, "cancelledJobs": []})
        self.last_heartbeat_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cancelled = [
            jid
            for jid, j in self.jobs.items()
            if self.heartbeat_reports_cancels and j.cancelled and j.status in ("assigned", "running")
        ]
        return _ok({"heartbeatIntervalSeconds": self.heartbeat_interval, "cancelledJobs": cancelled})

    def _me(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        running = [j for j in self.jobs.values() if j.status in ("assigned", "running")]
        done = [j for j in self.jobs.values() if j.status == "completed"]
        runner = {
            "_id": self.runner_id,
            "name": "test-runner",
            "status": ("busy" if running else "online") if self.last_heartbeat_at else "offline",
            "labels": ["linux"],
            "version": "0.1.0" if self.last_heartbeat_at else None,
            "lastHeartbeat": self.last_heartbeat_at,
            "jobsCompleted": len(done),
            "configuredConcurrency": 1,
            "currentJobs": len(running),
            "tokenPrefix": self.token_prefix,
        }
        return _ok(runner)

    def _poll(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.poll_429 > 0:
            self.poll_429 -= 1
            return 429, {"error": {"code": "rate_limited", "message": "slow down"}}, {"Retry-After": self.retry_after}
        if self.poll_503 > 0:
            self.poll_503 -= 1
            return _error(503, "unavailable", "maintenance")
        job = None
        if self.queue:
            fake = self.jobs[self.queue.pop(0)]
            fake.status = "assigned"
            if fake.cancel_before_running:
                fake.cancelled = True
            job = fake.job
        return _ok({"job": job, "pollIntervalSeconds": self.poll_interval})

    def _status(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        reported = self.jobs.get(body.get("jobId"))
        if reported is not None and reported.requeued and body.get("status") != "running":
            return _error(404, "not_found", f"Job {body['jobId']} not found")
        if reported is None or reported.status not in ("assigned", "running"):
            return _error(409, "conflict", "job not assigned to runner")
        result = body.get("result")
        if isinstance(result, dict) and (result.get("payload") or {}).get("reject"):
            return _error(413, "result_too_large", "result exceeds 256 KiB")
        if not reported.cancelled:
            reported.status = body["status"]
            reported.result = body.get("result")
            reported.error = body.get("error")
        elif body["status"] in ("completed", "failed"):
            reported.status = "cancelled"
            reported.error = body.get("error")
        return _ok({"jobId": body["jobId"], "status": reported.status, "cancelRequested": reported.cancelled})

    def _logs(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.log_503 > 0:
            self.log_503 -= 1
            return _error(503, "unavailable", "try again")
        job_id, seq, data = body.get("jobId"), body.get("seq"), body.get("data")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return _error(400, "invalid_request", "seq: must be a non-negative integer", field="seq")
        if not isinstance(data, str):
            return _error(400, "invalid_request", "data: must be a string", field="data")
        if len(data.encode()) > LOG_CHUNK_LIMIT:
            return _error(413, "payload_too_large", "data: at most 64 KiB of UTF-8", field="data")
        job = self.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None or job.status == "queued":
            return _error(404, "not_found", f"Job {job_id} not found")
        expected = len(job.log_chunks)
        if job.status not in ("assigned", "running"):
            return _error(409, SEQ_CONFLICT, "The job is finished", nextSeq=expected)
        if seq < expected:
            if job.log_chunks[seq] == data:
                return _ok({"nextSeq": expected, "cancelRequested": job.cancelled})
            return _error(409, SEQ_CONFLICT, f"Chunk {seq} is stored with other data", nextSeq=expected)
        if seq > expected:
            return _error(409, SEQ_CONFLICT, f"Expected chunk {expected}", nextSeq=expected)
        if job.truncated or job.log_bytes + len(data.encode()) > self.log_cap:
            job.truncated = True
            return _error(413, "log_limit_reached", "The job's log is full")
        job.log_chunks.append(data)
        if self.cancel_on_first_log:
            job.cancelled = True
        if seq in self.log_drop_response_seqs:
            self.log_drop_response_seqs.discard(seq)
            return DROP_CONNECTION, None, {}
        return _ok({"nextSeq": expected + 1, "cancelRequested": job.cancelled})

    def _create_artifact(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        job_id, name, content_type, size = (body.get(k) for k in ("jobId", "name", "contentType", "size"))
        if not isinstance(name, str) or not name or len(name) > 255:
            return _error(400, "invalid_request", "name: required, at most 255 characters", field="name")
        if not isinstance(content_type, str) or not content_type:
            return _error(400, "invalid_request", "contentType: required", field="contentType")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return _error(400, "invalid_request", "size: a non-negative integer", field="size")
        job = self.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            return _error(404, "not_found", f"Job {job_id} not found")
        if job.status not in ("assigned", "running"):
            return _error(409, "conflict", "The job is finished")
        if size > self.max_artifact_bytes:
            return _error(413, "artifact_too_large", "size: at most 100 MiB", field="size")
        if len(job.artifacts) >= self.max_artifacts:
            return _error(409, "artifact_limit_reached", f"A job has at most {self.max_artifacts} artifacts")
        artifact = FakeArtifact(
            artifact_id="art_" + secrets.token_hex(6),
            job_id=job_id,
            name=name,
            content_type=content_type,
            size=size,
            signed_size=size + self.signed_size_delta,
        )
        job.artifacts.append(artifact)
        self.artifacts[artifact.artifact_id] = artifact
        headers = {"x-amz-server-side-encryption": "AES256"}
        if not self.omit_upload_content_type:
            headers["Content-Type"] = content_type
        upload = {
            "artifactId": artifact.artifact_id,
            "uploadUrl": f"{self.url}/s3/{artifact.artifact_id}?X-Amz-Signature={secrets.token_hex(8)}",
            "method": "PUT",
            "headers": headers,
            "expiresAt": "2099-01-01T00:00:00Z",
        }
        if self.on_artifact_created is not None:
            self.on_artifact_created(artifact)
        return _ok(upload, status=201)

    def s3_put(self, path: str, headers: dict[str, str], read: Callable[[int], bytes]) -> tuple[int, str]:
        """The fake S3 behind the presigned URLs: (status, XML body)."""
        artifact_id = path.split("?", 1)[0].removeprefix("/s3/")
        with self.cond:
            self.requests.append(Request("PUT", path, None, headers, time.monotonic()))
            self.cond.notify_all()
            artifact = self.artifacts.get(artifact_id)
            if self.s3_503 > 0:
                self.s3_503 -= 1
                return 503, _s3_error("SlowDown", "Please reduce your request rate.")
        if artifact is None:
            return 404, _s3_error("NoSuchUpload", "The presigned URL does not exist")
        length = headers.get("content-length")
        if length is None:
            return 411, _s3_error("MissingContentLength", "You must provide the Content-Length HTTP header.")
        data = read(int(length))
        signed_type = None if self.omit_upload_content_type else artifact.content_type
        if int(length) != artifact.signed_size or (signed_type and headers.get("content-type") != signed_type):
            return 403, _s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match")
        if len(data) != int(length):
            return 400, _s3_error("IncompleteBody", "You did not provide the number of bytes specified")
        with self.cond:
            artifact.data = data
            artifact.put_headers = headers
            self.cond.notify_all()
        return 200, ""


def _s3_error(code: str, message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


def _make_handler(fake: FakeHangar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _json_request(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = fake.handle(method, self.path, body, headers)
            if status == DROP_CONNECTION:
                self.close_connection = True
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._json_request("POST")

        def do_GET(self) -> None:
            self._json_request("GET")

        def do_PUT(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, text = fake.s3_put(self.path, headers, self.rfile.read)
            data = text.encode()
            self.close_connection = status != 200
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on the upload (a file that shrank): it reads no answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(fake: FakeHangar) -> Iterator[FakeHangar]:
    """Run ``fake`` on a free port for the duration of a fixture."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        if fake.log_gate is not None:
            fake.log_gate.set()
        httpd.shutdown()
        httpd.server_close()
