"""A job's artifacts: the files its command leaves in ``$HANGAR_ARTIFACTS_DIR``, uploaded after it exits.

For each file the agent asks Hangar for an upload URL (``POST /api/runners/jobs/artifacts`` with its
name, content type and size), then PUTs the file's bytes there with the headers Hangar returned: a
presigned S3 URL bound to that size, so exactly ``size`` bytes are sent. The runner token never goes to
the upload URL. Any failure is an :class:`UploadError` whose message names the file and the reason.
"""

from __future__ import annotations

import http.client
import mimetypes
import os
import re
import stat
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hangar_agent import log
from hangar_agent.api import USER_AGENT, ApiClient, NetworkError, backoff_delay

ARTIFACTS_PATH = "/api/runners/jobs/artifacts"
ARTIFACTS_ENV = "HANGAR_ARTIFACTS_DIR"
PUT_ATTEMPTS = 3
PUT_TIMEOUT_SECONDS = 60.0
UPLOAD_BLOCK_BYTES = 256 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Report formats scanners write that Python's built-in table does not know (it is used without the
# machine's /etc/mime.types, so that every agent sends the same type for the same name).
EXTRA_CONTENT_TYPES = {
    ".sarif": "application/sarif+json",
    ".md": "text/markdown",
    ".log": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".toml": "application/toml",
}
COMPRESSED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
_BUILTIN_TYPES = mimetypes.MimeTypes()
_S3_CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>")
_S3_MESSAGE_RE = re.compile(r"<Message>([^<]{1,300})</Message>")


class UploadError(Exception):
    """An artifact could not be uploaded; the message says which and why."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    name: str  # path relative to the artifacts directory, with "/" separators


def content_type(name: str) -> str:
    """The content type of a file from its name (``application/octet-stream`` when unknown)."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in EXTRA_CONTENT_TYPES:
        return EXTRA_CONTENT_TYPES[suffix]
    guessed, encoding = _BUILTIN_TYPES.guess_type(name, strict=False)
    if encoding is not None:
        return COMPRESSED_TYPES.get(encoding, DEFAULT_CONTENT_TYPE)
    return guessed or DEFAULT_CONTENT_TYPE


def find_artifacts(directory: Path) -> list[Artifact]:
    """Every regular file under ``directory``, sorted by name. Symbolic links and special files are
    skipped (with a log line): an artifact is what the command wrote there."""
    found: list[Artifact] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        linked_dirs = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        for entry in [*files, *linked_dirs]:
            path = Path(root, entry)
            name = path.relative_to(directory).as_posix()
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                found.append(Artifact(path=path, name=name))
            else:
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                log.warning("artifact_skipped", file=name, reason=kind)
    return sorted(found, key=lambda artifact: artifact.name)


def _storage_error(status: int, text: str) -> str:
    code = _S3_CODE_RE.search(text)
    message = _S3_MESSAGE_RE.search(text)
    detail = ": ".join(match.group(1).strip() for match in (code, message) if match)
    return f"HTTP {status}" + (f" {detail}" if detail else "")


class _ShortFileError(Exception):
    """The file has fewer bytes than declared (it shrank after it was measured)."""


def put_file(
    url: str, headers: dict[str, str], stream: IO[bytes], size: int, *, timeout: float
) -> tuple[int, str]:
    """PUT exactly ``size`` bytes of ``stream`` to ``url`` with ``headers``; (status, body text).

    Raises NetworkError when no HTTP answer came, _ShortFileError when the stream ends early. Redirects are
    not followed. The body is streamed, never read whole into memory."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetworkError(f"not an http(s) URL: {parts.scheme}://...")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        try:
            connection.putrequest("PUT", target, skip_accept_encoding=True)
            given = {name.lower() for name in headers}
            for name, value in headers.items():
                if name.lower() != "content-length":
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(size))
            if "user-agent" not in given:
                connection.putheader("User-Agent", USER_AGENT)
            connection.endheaders()
            remaining = size
            while remaining > 0:
                block = stream.read(min(UPLOAD_BLOCK_BYTES, remaining))
                if not block:
                    raise _ShortFileError()
                connection.send(block)
                remaining -= len(block)
        except OSError as exc:
            # The storage service may answer (e.g. 400) and close before the body is all sent: read it.
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException):
                raise NetworkError(f"{type(exc).__name__}: {exc}") from None
        except http.client.HTTPException as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from None
        else:
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise NetworkError(f"{type(exc).__name__}: {exc}") from None
        try:
            text = response.read(64 * 1024).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):
            text = ""
        return int(response.status), text
    finally:
        connection.close()


def _upload_target(data: dict[str, Any], name: str) -> tuple[str, dict[str, str]]:
    url = data.get("uploadUrl")
    method = str(data.get("method") or "PUT").upper()
    headers = data.get("headers") or {}
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UploadError(f"{name}: the server's answer has no upload URL")
    if method != "PUT":
        raise UploadError(
            f"{name}: the server asked for an upload method this agent does not support ({method})"
        )
    if not isinstance(headers, dict):
        raise UploadError(f"{name}: the server's upload headers are not an object")
    return url, {str(key): str(value) for key, value in headers.items()}


def upload_artifact(
    client: ApiClient, job_id: str, artifact: Artifact, *, abort: threading.Event, deadline: float | None
) -> int:
    """Upload one artifact; its size in bytes. Raises UploadError."""
    name = artifact.name
    try:
        fd = os.open(artifact.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise UploadError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        body = {"jobId": job_id, "name": name, "contentType": content_type(name), "size": size}
        resp = client.call(ARTIFACTS_PATH, body, kind="artifacts", abort=abort, deadline=deadline)
        if resp is None:
            raise UploadError(f"{name}: the Hangar API could not be reached to upload it")
        if not resp.ok:
            raise UploadError(f"{name}: refused by the server: {resp.error_code()}: {resp.error_message()}")
        url, headers = _upload_target(resp.data(), name)
        if not any(key.lower() == "content-type" for key in headers):
            headers["Content-Type"] = content_type(name)  # unsigned, so harmless; the object gets its type
        failure = ""
        for attempt in range(PUT_ATTEMPTS):
            if attempt:
                if abort.wait(backoff_delay(attempt - 1)):
                    break
                stream.seek(0)
            try:
                status, text = put_file(url, headers, stream, size, timeout=PUT_TIMEOUT_SECONDS)
            except _ShortFileError:
                raise UploadError(
                    f"{name}: the file changed while it was uploaded (it was {size} bytes)"
                ) from None
            except NetworkError as exc:
                failure = f"network error: {exc}"
                continue
            if 200 <= status < 300:
                return size
            failure = f"the storage service answered {_storage_error(status, text)}"
            if status < 500:
                break  # refused (size, signature, expiry): trying again cannot help
        raise UploadError(f"{name}: upload failed: {failure or 'aborted'}")


def upload_artifacts(
    client: ApiClient, job_id: str, directory: Path, *, abort: threading.Event, deadline: float | None
) -> tuple[int, str | None]:
    """Upload every artifact in ``directory``, in name order; (files uploaded, error or None).

    The first failure stops the uploads: its message is the error the job is failed with."""
    uploaded = 0
    for artifact in find_artifacts(directory):
        try:
            size = upload_artifact(client, job_id, artifact, abort=abort, deadline=deadline)
        except UploadError as exc:
            return uploaded, str(exc)
        uploaded += 1
        log.info("artifact_uploaded", job=job_id, file=artifact.name, bytes=size)
    return uploaded, None
