"""local/s3_signatures.py: the embedded backend refuses what S3 would refuse of a presigned URL (another
size or type than signed, a tampered URL, an expired one) and any request without a credential; real
HTTP against moto's server app behind it, with URLs presigned by botocore as the API presigns them."""

from __future__ import annotations

import threading
import time
from calendar import timegm
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

from local.s3_signatures import presigned_refusal, verify_s3_requests

CREDENTIALS = {"testing": "testing"}
BUCKET = "signatures-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    app = verify_s3_requests(DomainDispatcherApplication(create_backend_app), CREDENTIALS)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.server_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4"),
    )
    client.create_bucket(Bucket=BUCKET)  # header-signed SDK calls pass as before
    try:
        yield client
    finally:
        server.shutdown()


def _put_url(s3: Any, key: str, size: int, content_type: str = "text/plain", expires: int = 900) -> str:
    params = {"Bucket": BUCKET, "Key": key, "ContentLength": size, "ContentType": content_type}
    url: str = s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
    return url


def _error_code(response: requests.Response) -> str:
    return response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def test_a_put_of_the_signed_size_and_type_is_stored(s3: Any) -> None:
    key = "org-a/job_1/art_ok"
    response = requests.put(_put_url(s3, key, 5), data=b"hello", headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 200, response.text
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == b"hello" and stored["ContentType"] == "text/plain"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"hello!", "text/plain"), (b"hell", "text/plain"), (b"hello", "application/octet-stream")],
    ids=["larger", "smaller", "other-type"],
)
def test_a_put_of_another_size_or_type_is_refused_and_stores_nothing(s3: Any, body: bytes, content_type: str) -> None:
    key = f"org-a/job_1/art_{len(body)}_{content_type.replace('/', '_')}"
    response = requests.put(_put_url(s3, key, 5), data=body, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_a_tampered_url_is_refused(s3: Any) -> None:
    url = _put_url(s3, "org-a/job_1/art_mine", 5)
    for tampered in (
        url.replace("art_mine", "art_other"),
        url.replace("org-a", "org-b"),
        url.replace("X-Amz-Expires=900", "X-Amz-Expires=901"),
    ):
        response = requests.put(tampered, data=b"hello", headers={"Content-Type": "text/plain"}, timeout=10)
        assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch", tampered


def test_presigned_downloads_work_and_anonymous_requests_do_not(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="org-a/job_2/art_report", Body=b"report", ContentType="text/html")
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": BUCKET, "Key": "org-a/job_2/art_report", "ResponseContentDisposition": "attachment"},
        ExpiresIn=900,
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"report"
    anonymous = url.split("?", 1)[0]
    for method in ("GET", "PUT", "DELETE"):
        response = requests.request(method, anonymous, data=b"x" if method == "PUT" else None, timeout=10)
        assert response.status_code == 403 and _error_code(response) == "AccessDenied", method
    assert s3.get_object(Bucket=BUCKET, Key="org-a/job_2/art_report")["Body"].read() == b"report"


def test_an_expired_url_or_unknown_key_is_refused(s3: Any) -> None:
    url = urlsplit(_put_url(s3, "org-a/job_3/art_late", 5, expires=600))
    signed_at = timegm(time.strptime(parse_qs(url.query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    builder = EnvironBuilder(
        method="PUT",
        base_url=f"http://{url.netloc}",
        path=url.path,
        query_string=url.query,
        headers={"Content-Type": "text/plain"},
        data=b"hello",
    )
    environ = builder.get_environ()
    assert presigned_refusal(environ, CREDENTIALS, now=signed_at + 599) is None
    assert presigned_refusal(environ, CREDENTIALS, now=signed_at + 601) == ("AccessDenied", "Request has expired")
    refusal = presigned_refusal(environ, {"someone-else": "secret"}, now=signed_at)
    assert refusal is not None and refusal[0] == "InvalidAccessKeyId"
    environ["QUERY_STRING"] = url.query.replace("X-Amz-Date=", "X-Amz-Date=x")
    refusal = presigned_refusal(environ, CREDENTIALS, now=signed_at)
    assert refusal is not None and refusal[0] == "AuthorizationQueryParametersError"
