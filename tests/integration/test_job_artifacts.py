"""Job artifacts in-process against moto: declaring (presigned PUT bound to size and type, limits, who
may), listing (only what was uploaded with the declared size, presigned GETs), isolation, retention.

That S3 refuses a PUT of another size than the URL was signed for is tested against the local backend,
which checks signatures as S3 does (tests/e2e/test_job_outputs_e2e.py); moto in-process checks none."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from builders import live_runner, running_job
from hangar.core import clock
from job_outputs_helpers import declare, list_artifacts, output_items, settings, upload_object
from jobs_helpers import cancel, get_job, report
from support import AwsStack, invoke, runner_event, unique_org, user_event

DAY = 86400


def test_declare_upload_list_download(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    report_bytes = b'{"version": "2.1.0", "runs": []}'
    status, body = declare(org, runner_id, job_id, "report.sarif", len(report_bytes))
    assert status == 201, body
    upload = body["data"]
    assert set(upload) == {"artifactId", "uploadUrl", "method", "headers", "expiresAt"}
    assert upload["artifactId"].startswith("art_") and upload["method"] == "PUT"
    assert upload["headers"] == {"Content-Type": "application/sarif+json", "Content-Length": str(len(report_bytes))}
    url = urlparse(upload["uploadUrl"])
    query = parse_qs(url.query)
    # Size and type are part of the signature: S3 refuses a PUT that sends other values.
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["900"]
    assert url.path.endswith(f"/{org}/{job_id}/{upload['artifactId']}")  # keys start with the tenant

    # Declared, not uploaded: not listed.
    assert list_artifacts(org, job_id) == (200, {"artifacts": []})
    response = requests.put(upload["uploadUrl"], data=report_bytes, headers=upload["headers"], timeout=10)
    assert response.status_code == 200, response.text

    status, listed = list_artifacts(org, job_id)
    assert status == 200
    (artifact,) = listed["artifacts"]
    assert set(artifact) == {"id", "name", "contentType", "size", "createdAt", "downloadUrl", "downloadExpiresAt"}
    assert (artifact["id"], artifact["name"], artifact["size"]) == (upload["artifactId"], "report.sarif", 32)
    assert artifact["contentType"] == "application/sarif+json"
    download = requests.get(artifact["downloadUrl"], timeout=10)
    assert download.status_code == 200 and download.content == report_bytes
    assert download.headers["Content-Type"] == "application/sarif+json"
    assert 'filename="report.sarif"' in download.headers["Content-Disposition"]
    assert parse_qs(urlparse(artifact["downloadUrl"]).query)["X-Amz-Expires"] == ["900"]


def test_only_objects_with_the_declared_size_are_listed(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    ids = {}
    for name, size in (("exact.txt", 4), ("short.txt", 10), ("missing.txt", 3)):
        status, body = declare(org, runner_id, job_id, name, size, contentType="text/plain")
        assert status == 201, body
        ids[name] = body["data"]["artifactId"]
    upload_object(org, job_id, ids["exact.txt"], b"four", "text/plain")
    upload_object(org, job_id, ids["short.txt"], b"four", "text/plain")
    _, listed = list_artifacts(org, job_id)
    assert [artifact["name"] for artifact in listed["artifacts"]] == ["exact.txt"]


def test_declaring_a_name_again_keeps_its_id_and_the_21st_name_is_refused(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    first = declare(org, runner_id, job_id, "a.txt", 1)[1]["data"]["artifactId"]
    again = declare(org, runner_id, job_id, "a.txt", 7)
    assert again[0] == 201 and again[1]["data"]["artifactId"] == first
    assert again[1]["data"]["headers"]["Content-Length"] == "7"
    for index in range(19):
        assert declare(org, runner_id, job_id, f"file-{index}.txt", 1)[0] == 201
    status, body = declare(org, runner_id, job_id, "one-too-many.txt", 1)
    assert status == 403 and body["error"]["code"] == "artifact_limit_reached", body
    assert declare(org, runner_id, job_id, "a.txt", 2)[0] == 201  # a retry is not a new artifact
    assert len(output_items(org, job_id, "artifact#")) == 20
    assert get_job(org, job_id)["status"] == "assigned"


def test_the_limits_are_template_parameters(aws: AwsStack) -> None:
    with settings(artifacts_per_job="1", artifact_max_bytes="1000"):
        org, runner_id, job_id = running_job()
        status, body = declare(org, runner_id, job_id, "big.bin", 1001)
        assert status == 413 and body["error"]["field"] == "size", body
        assert declare(org, runner_id, job_id, "ok.bin", 1000)[0] == 201
        assert declare(org, runner_id, job_id, "second.bin", 1)[0] == 403
    org, runner_id, job_id = running_job()
    status, body = declare(org, runner_id, job_id, "huge.bin", 100 * 1024 * 1024 + 1)
    assert status == 413 and body["error"]["field"] == "size"
    assert declare(org, runner_id, job_id, "largest.bin", 100 * 1024 * 1024)[0] == 201


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "..", "a/b.txt", "/abs", "a\\b", "..hidden", "tab\there", "new\nline", "nul\x00", ""]
)
def test_a_name_that_is_not_a_plain_file_name_is_400_naming_name(aws: AwsStack, name: str) -> None:
    org, runner_id, job_id = running_job()
    status, body = declare(org, runner_id, job_id, name, 1)
    assert status == 400 and body["error"]["field"] == "name", body
    assert output_items(org, job_id) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"size": -1}, "size"),
        ({"size": "5"}, "size"),
        ({"contentType": "not a type"}, "contentType"),
        ({"contentType": "text/plain\r\nX-Evil: 1"}, "contentType"),
        ({"jobId": ""}, "jobId"),
        ({"extra": True}, "extra"),
    ],
)
def test_bad_input_is_400_naming_the_field(aws: AwsStack, fields: dict[str, Any], field: str) -> None:
    org, runner_id, job_id = running_job()
    status, body = declare(org, runner_id, job_id, **fields)
    assert status == 400 and body["error"]["field"] == field, body


def test_names_with_spaces_and_unicode_download_under_their_name(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    name = 'plan "final" ✓.txt'
    status, body = declare(org, runner_id, job_id, name, 2, contentType="text/plain; charset=utf-8")
    assert status == 201, body
    upload_object(org, job_id, body["data"]["artifactId"], b"ok", "text/plain; charset=utf-8")
    (artifact,) = list_artifacts(org, job_id)[1]["artifacts"]
    assert artifact["name"] == name
    disposition = requests.get(artifact["downloadUrl"], timeout=10).headers["Content-Disposition"]
    assert disposition == (
        "attachment; filename=\"plan _final_ _.txt\"; filename*=UTF-8''plan%20%22final%22%20%E2%9C%93.txt"
    )


def test_only_the_runner_holding_the_job_may_declare(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    other = live_runner(org, name="other")
    assert declare(org, other, job_id)[0] == 404
    intruder_org, intruder_runner, _ = running_job()
    assert declare(intruder_org, intruder_runner, job_id)[0] == 404
    event = user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner_id})
    assert invoke("RegenerateRunnerToken", event)[0] == 200
    status, body = declare(org, runner_id, job_id, version=1)
    assert status == 401, body
    assert declare(org, runner_id, job_id, version=2)[0] == 201


def test_a_finished_job_takes_no_artifacts_and_a_cancelled_one_until_acknowledged(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert report(org, runner_id, job_id, "completed")[0] == 200
    status, body = declare(org, runner_id, job_id)
    assert status == 409 and body["error"]["code"] == "job_finished", body

    org, runner_id, job_id = running_job()
    assert cancel(org, job_id)[0] == 200
    assert declare(org, runner_id, job_id, "partial.txt")[0] == 201
    assert report(org, runner_id, job_id, "failed", error="killed")[1]["data"]["status"] == "cancelled"
    status, body = declare(org, runner_id, job_id, "after.txt")
    assert status == 409 and body["error"]["code"] == "job_finished"


def test_listing_another_tenants_job_is_404_and_needs_jobs_read(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    body = declare(org, runner_id, job_id, "secret.txt", 6)[1]["data"]
    upload_object(org, job_id, body["artifactId"], b"secret", "text/plain")
    status, listed = list_artifacts(unique_org(), job_id)
    assert status == 404 and "secret" not in str(listed)
    status, refused = list_artifacts(org, job_id, scopes="runners:read")
    assert status == 403 and refused["error"]["code"] == "insufficient_scope"
    assert list_artifacts(org, job_id, scopes="jobs:read")[0] == 200
    event = user_event("ListJobArtifacts", org, path_params={"jobId": "x" * 129})
    status, bad, _ = invoke("ListJobArtifacts", event)
    assert status == 400 and bad["error"]["field"] == "jobId"


def test_after_the_retention_artifacts_are_gone_and_the_job_remains(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    body = declare(org, runner_id, job_id, "report.html", 4)[1]["data"]
    upload_object(org, job_id, body["artifactId"], b"<p/>", "text/html")
    assert report(org, runner_id, job_id, "completed")[0] == 200
    (record,) = output_items(org, job_id, "artifact#")
    assert record["expiresAtEpoch"] - clock.now() == pytest.approx(30 * DAY, abs=5)
    clock.advance(30 * DAY - 60)
    assert len(list_artifacts(org, job_id)[1]["artifacts"]) == 1
    clock.advance(120)
    assert list_artifacts(org, job_id) == (200, {"artifacts": []})
    assert get_job(org, job_id)["status"] == "completed"


def test_a_runner_event_without_a_runner_is_refused(aws: AwsStack) -> None:
    org, _, job_id = running_job()
    event = runner_event("CreateJobArtifact", org, "rnr_nobody", body={"jobId": job_id, "name": "a", "size": 1})
    status, body, _ = invoke("CreateJobArtifact", event)
    assert status == 401, body
