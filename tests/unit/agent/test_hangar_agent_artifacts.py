"""Artifacts in-process: which files count, their names and content types, and the upload itself (the API
call, then a PUT of exactly the declared size) against the fake Hangar and its fake S3."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from fake_hangar import FakeArtifact, FakeHangar
from hangar_agent.api import ApiClient
from hangar_agent.artifacts import (
    Artifact,
    UploadError,
    content_type,
    find_artifacts,
    upload_artifact,
    upload_artifacts,
)


def client(server: FakeHangar) -> ApiClient:
    return ApiClient(server.url, server.runner_token, timeout=10)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.sarif", "application/sarif+json"),
        ("results/scan.json", "application/json"),
        ("plan.tfplan", "application/octet-stream"),
        ("index.HTML", "text/html"),
        ("notes.md", "text/markdown"),
        ("build.log", "text/plain"),
        ("out.yml", "application/yaml"),
        ("bundle.tar.gz", "application/gzip"),
        ("archive.zip", "application/zip"),
        ("noextension", "application/octet-stream"),
    ],
)
def test_content_types_are_guessed_the_same_on_every_machine(name: str, expected: str) -> None:
    assert content_type(name) == expected


def test_artifacts_are_the_regular_files_named_by_their_relative_path(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "reports" / "deep").mkdir(parents=True)
    (tmp_path / "reports" / "deep" / "a.sarif").write_text("{}")
    (tmp_path / "empty-dir").mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-secret"
    outside.write_text("not an artifact")
    (tmp_path / "link.txt").symlink_to(outside)
    (tmp_path / "linked-dir").symlink_to(tmp_path / "reports", target_is_directory=True)
    os.mkfifo(tmp_path / "pipe")
    found = find_artifacts(tmp_path)
    assert [a.name for a in found] == ["b.txt", "reports/deep/a.sarif"]


def test_an_upload_sends_the_declared_size_with_the_returned_headers(server: FakeHangar, tmp_path: Path) -> None:
    job_id = server.running_job()
    data = os.urandom(300_000)  # more than one upload block
    (tmp_path / "blob.bin").write_bytes(data)
    uploaded, error = upload_artifacts(client(server), job_id, tmp_path, abort=threading.Event(), deadline=None)
    assert (uploaded, error) == (1, None)
    (artifact,) = server.jobs[job_id].artifacts
    assert (artifact.name, artifact.size, artifact.data) == ("blob.bin", len(data), data)
    (created,) = server.of("/api/runners/jobs/artifacts")
    assert created.body == {
        "jobId": job_id,
        "name": "blob.bin",
        "contentType": "application/octet-stream",
        "size": len(data),
    }
    assert artifact.put_headers["content-length"] == str(len(data))
    assert artifact.put_headers["content-type"] == "application/octet-stream"
    assert "x-runner-token" not in artifact.put_headers and "transfer-encoding" not in artifact.put_headers


def test_without_a_signed_content_type_the_guessed_one_is_sent(server: FakeHangar, tmp_path: Path) -> None:
    server.omit_upload_content_type = True
    job_id = server.running_job()
    (tmp_path / "r.sarif").write_text("{}")
    assert upload_artifacts(client(server), job_id, tmp_path, abort=threading.Event(), deadline=None) == (1, None)
    assert server.jobs[job_id].artifacts[0].put_headers["content-type"] == "application/sarif+json"


def test_a_file_that_shrinks_after_it_was_declared_fails_the_upload(server: FakeHangar, tmp_path: Path) -> None:
    job_id = server.running_job()
    path = tmp_path / "growing.log"
    path.write_bytes(b"x" * 5000)

    def truncate(_: FakeArtifact) -> None:
        path.write_bytes(b"x" * 10)  # rewritten by a straggler between the declaration and the PUT

    server.on_artifact_created = truncate
    changed = r"^growing.log: the file changed while it was uploaded \(it was 5000 bytes\)$"
    with pytest.raises(UploadError, match=changed):
        upload_artifact(client(server), job_id, Artifact(path, "growing.log"), abort=threading.Event(), deadline=None)
    assert server.jobs[job_id].artifacts[0].data is None


def test_the_storage_services_refusal_is_final_and_named(server: FakeHangar, tmp_path: Path) -> None:
    server.signed_size_delta = -1  # a URL bound to another size: S3 refuses the PUT
    job_id = server.running_job()
    (tmp_path / "a.txt").write_text("abc")
    uploaded, error = upload_artifacts(client(server), job_id, tmp_path, abort=threading.Event(), deadline=None)
    assert uploaded == 0
    assert error == (
        "a.txt: upload failed: the storage service answered HTTP 403 SignatureDoesNotMatch: "
        "The request signature we calculated does not match"
    )
    assert len([r for r in server.requests if r.method == "PUT"]) == 1  # a 4xx is not retried


def test_an_api_refusal_stops_the_uploads(server: FakeHangar, tmp_path: Path) -> None:
    job_id = server.running_job()
    server.max_artifact_bytes = 10
    (tmp_path / "a-small.txt").write_text("ok")
    (tmp_path / "b-big.txt").write_text("x" * 11)
    (tmp_path / "c-never.txt").write_text("ok")
    uploaded, error = upload_artifacts(client(server), job_id, tmp_path, abort=threading.Event(), deadline=None)
    assert uploaded == 1
    assert error == "b-big.txt: refused by the server: artifact_too_large: size: at most 100 MiB"
    assert [a.name for a in server.jobs[job_id].artifacts] == ["a-small.txt"]
