"""Job logs and artifacts over real HTTP against `python -m local`: a follower reads a log while a runner
writes it, concurrent senders of one seq, presigned uploads and downloads against the embedded S3 (which
refuses an upload of another size than declared, as S3 does), retention by the local clock, and no
credential in the server's output."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from local.testing import LocalApi, start_local_api, unique_org

DAY = 86400


@dataclass
class RunningJob:
    api: LocalApi
    org: str
    token: str  # a user JWT with every scope
    runner_token: str
    job_id: str

    def append(self, seq: int, data: str) -> Any:
        return self.api.call(
            "POST",
            "/api/runners/jobs/logs",
            runner_token=self.runner_token,
            json={"jobId": self.job_id, "seq": seq, "data": data},
        )

    def logs(self, **query: str) -> Any:
        suffix = "&".join(f"{name}={value}" for name, value in query.items())
        return self.api.call("GET", f"/v1/jobs/{self.job_id}/logs" + (f"?{suffix}" if suffix else ""), token=self.token)

    def report(self, status: str) -> Any:
        body = {"jobId": self.job_id, "status": status}
        result = self.api.call("POST", "/api/runners/jobs/status", runner_token=self.runner_token, json=body)
        assert result.status == 200, result
        return result


def running_job(api: LocalApi) -> RunningJob:
    """A job claimed over HTTP by a runner that heartbeats, and reported running."""
    org = unique_org("out")
    token = api.jwt(org)
    assert api.call("PUT", f"/v1/orgs/{org}/license", token=token, json={"plan": "team"}).status == 200
    runner = api.call("POST", "/api/runners", token=token, json={"name": "e2e", "labels": ["linux"]}).body["data"]
    assert (
        api.call("POST", "/api/runners/heartbeat", runner_token=runner["token"], json={"status": "online"}).status
        == 200
    )
    job = api.call("POST", "/v1/jobs", token=token, json={"type": "scan", "labels": ["linux"]}).body
    polled = api.call("POST", "/api/runners/jobs", runner_token=runner["token"], json={}).body["data"]["job"]
    assert polled["_id"] == job["id"]
    running = RunningJob(api, org, token, runner["token"], job["id"])
    running.report("running")
    return running


def test_a_follower_sees_the_log_while_it_is_written_and_all_of_it_at_the_end(local_api: LocalApi) -> None:
    job = running_job(local_api)
    written = [f"line {index:04d} ✓ {'x' * (index % 50)}\n" for index in range(300)]
    seen_before_end: list[str] = []
    followed: list[str] = []
    done = threading.Event()

    refused: list[Any] = []

    def follow() -> None:
        cursor = ""
        while True:
            try:
                result = job.logs(**({"cursor": cursor} if cursor else {}))
            except OSError as error:  # the test fails on it below
                refused.append(error)
                return
            if result.status != 200:
                refused.append(result)  # the test fails on it below, with the response
                return
            page = result.body
            followed.extend(chunk["data"] for chunk in page["chunks"])
            if not done.is_set():
                seen_before_end.extend(chunk["data"] for chunk in page["chunks"])
            if page["complete"]:
                return
            cursor = page["nextCursor"] or cursor
            time.sleep(0.05)

    follower = threading.Thread(target=follow)
    follower.start()
    for seq in range(0, len(written), 10):
        result = job.append(seq // 10, "".join(written[seq : seq + 10]))
        assert result.status == 200 and result.body["data"]["nextSeq"] == seq // 10 + 1, result
    deadline = time.monotonic() + 30
    while not seen_before_end and not refused and time.monotonic() < deadline:  # ends once the follower saw output
        time.sleep(0.05)
    done.set()
    job.report("completed")
    follower.join(60)
    assert not follower.is_alive() and not refused, refused
    assert seen_before_end, "the follower saw nothing while the job ran"
    assert "".join(followed) == "".join(written)

    text = local_api.call("GET", f"/v1/jobs/{job.job_id}/logs?format=text", token=job.token)
    assert text.status == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert text.body == "".join(written) and text.headers["Hangar-Log-Complete"] == "true"
    view = local_api.call("GET", f"/v1/jobs/{job.job_id}", token=job.token).body
    assert view["logBytes"] == len("".join(written).encode()) and view["truncated"] is False


def test_concurrent_senders_of_one_seq_store_one_chunk(local_api: LocalApi) -> None:
    job = running_job(local_api)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: job.append(0, "only once\n"), range(8)))
    assert [result.status for result in results] == [200] * 8, [r.body for r in results]
    assert {result.body["data"]["nextSeq"] for result in results} == {1}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda index: job.append(1, f"sender {index}\n"), range(8)))
    assert sorted(result.status for result in results) == [200] + [409] * 7
    page = job.logs().body
    assert [chunk["seq"] for chunk in page["chunks"]] == [0, 1]
    assert page["chunks"][0]["data"] == "only once\n"
    assert local_api.call("GET", f"/v1/jobs/{job.job_id}", token=job.token).body["logBytes"] == len(
        "only once\n" + page["chunks"][1]["data"]
    )


def declare(job: RunningJob, name: str, size: int, content_type: str) -> dict[str, Any]:
    body = {"jobId": job.job_id, "name": name, "contentType": content_type, "size": size}
    result = job.api.call("POST", "/api/runners/jobs/artifacts", runner_token=job.runner_token, json=body)
    assert result.status == 201, result
    upload: dict[str, Any] = result.body["data"]
    return upload


def test_artifacts_upload_and_download_through_the_embedded_s3(local_api: LocalApi) -> None:
    job = running_job(local_api)
    report = b'{"version": "2.1.0", "runs": [{"results": []}]}'
    html = "<html><body>✓ no findings</body></html>".encode()
    uploads = {
        "report.sarif": (declare(job, "report.sarif", len(report), "application/sarif+json"), report),
        "summary.html": (declare(job, "summary.html", len(html), "text/html; charset=utf-8"), html),
    }
    for upload, content in uploads.values():
        assert upload["uploadUrl"].startswith("http://127.0.0.1:"), upload  # the embedded backend
        response = requests.put(upload["uploadUrl"], data=content, headers=upload["headers"], timeout=10)
        assert response.status_code == 200, response.text
    job.report("completed")

    listed = local_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=job.token)
    assert listed.status == 200, listed
    by_name = {artifact["name"]: artifact for artifact in listed.body["artifacts"]}
    assert set(by_name) == set(uploads)
    for name, (upload, content) in uploads.items():
        artifact = by_name[name]
        assert artifact["id"] == upload["artifactId"] and artifact["size"] == len(content)
        download = requests.get(artifact["downloadUrl"], timeout=10)
        assert download.status_code == 200 and download.content == content
        assert download.headers["Content-Type"] == upload["headers"]["Content-Type"] == artifact["contentType"]


def test_the_embedded_s3_refuses_an_upload_of_another_size_than_declared(local_api: LocalApi) -> None:
    job = running_job(local_api)
    upload = declare(job, "scan.json", 10, "application/json")
    headers = {"Content-Type": "application/json"}
    larger = requests.put(upload["uploadUrl"], data=b"0123456789+", headers=headers, timeout=10)
    assert larger.status_code == 403 and "SignatureDoesNotMatch" in larger.text
    unsigned = requests.put(upload["uploadUrl"].split("?", 1)[0], data=b"0123456789", headers=headers, timeout=10)
    assert unsigned.status_code == 403 and "AccessDenied" in unsigned.text
    listed = local_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=job.token).body
    assert listed == {"artifacts": []}
    assert requests.put(upload["uploadUrl"], data=b"0123456789", headers=headers, timeout=10).status_code == 200
    assert len(local_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=job.token).body["artifacts"]) == 1


def test_isolation_scopes_and_other_runners_over_http(local_api: LocalApi) -> None:
    job = running_job(local_api)
    assert job.append(0, "private\n").status == 200
    intruder = running_job(local_api)
    for path in (f"/v1/jobs/{job.job_id}/logs", f"/v1/jobs/{job.job_id}/artifacts"):
        assert local_api.call("GET", path, token=intruder.token).status == 404, path
        refused = local_api.call("GET", path, token=local_api.jwt(job.org, "runners:read"))
        assert refused.status == 403 and refused.body["error"]["code"] == "insufficient_scope", path
    body = {"jobId": job.job_id, "seq": 1, "data": "not yours\n"}
    assert local_api.call("POST", "/api/runners/jobs/logs", runner_token=intruder.runner_token, json=body).status == 404
    body = {"jobId": job.job_id, "name": "x.txt", "size": 1}
    result = local_api.call("POST", "/api/runners/jobs/artifacts", runner_token=intruder.runner_token, json=body)
    assert result.status == 404


def test_no_credential_in_the_servers_output(local_api: LocalApi) -> None:
    mark = local_api.output_mark()
    job = running_job(local_api)
    assert job.append(0, "hello\n").status == 200
    assert job.append(5, "gap\n").status == 409
    upload = declare(job, "a.txt", 2, "text/plain")
    assert requests.put(upload["uploadUrl"], data=b"ok", headers=upload["headers"], timeout=10).status_code == 200
    assert job.logs(format="text").status == 200
    assert local_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=job.token).status == 200
    output = local_api.output(mark)
    assert "/api/runners/jobs/logs" in output  # the access log did record the requests
    for secret in (job.runner_token, job.token, upload["uploadUrl"].split("X-Amz-Signature=")[1]):
        assert secret not in output


@pytest.fixture(scope="module")
def retention_api() -> Iterator[LocalApi]:
    """A server of its own: the test moves its clock a month ahead."""
    api = start_local_api(timeout=60)
    try:
        yield api
    finally:
        api.stop()


def test_after_the_retention_logs_and_artifacts_are_gone_and_the_job_remains(retention_api: LocalApi) -> None:
    job = running_job(retention_api)
    assert job.append(0, "kept 30 days\n").status == 200
    upload = declare(job, "report.txt", 4, "text/plain")
    assert requests.put(upload["uploadUrl"], data=b"four", headers=upload["headers"], timeout=10).status_code == 200
    job.report("completed")
    retention_api.advance_clock(30 * DAY - 300)
    token = retention_api.jwt(job.org)
    assert retention_api.call("GET", f"/v1/jobs/{job.job_id}/logs?format=text", token=token).body == "kept 30 days\n"
    assert len(retention_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=token).body["artifacts"]) == 1
    retention_api.advance_clock(600)
    page = retention_api.call("GET", f"/v1/jobs/{job.job_id}/logs", token=token).body
    assert page["chunks"] == [] and page["complete"] is True
    assert retention_api.call("GET", f"/v1/jobs/{job.job_id}/artifacts", token=token).body == {"artifacts": []}
    view = retention_api.call("GET", f"/v1/jobs/{job.job_id}", token=token).body
    assert view["status"] == "completed" and view["logBytes"] == 0
