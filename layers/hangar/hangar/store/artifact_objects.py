"""The artifacts bucket: object keys, presigned URLs, and what has been uploaded.

Keys start with the tenant id ("<orgId>/<jobId>/<artifactId>"), so a bucket policy, an S3 inventory
or a lifecycle rule can always be scoped to one tenant. Uploads and downloads never pass through
Lambda: the API hands out presigned URLs (SigV4, query-string signed).

An upload URL signs `Content-Length` and `Content-Type` with the rest of the request: S3 recomputes
the signature from the headers the client actually sends, so a PUT of any other size (or type) is
refused with 403 `SignatureDoesNotMatch` before anything is stored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hangar.core.config import get_settings


@lru_cache(maxsize=1)
def client() -> Any:
    """The process-wide S3 client (the endpoint comes from AWS_ENDPOINT_URL* locally)."""
    return boto3.client(
        "s3",
        config=Config(
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=3,
            read_timeout=10,
        ),
    )


def bucket() -> str:
    return get_settings().artifacts_bucket


def job_prefix(org_id: str, job_id: str) -> str:
    return f"{org_id}/{job_id}/"


def artifact_key(org_id: str, job_id: str, artifact_id: str) -> str:
    return job_prefix(org_id, job_id) + artifact_id


def log_text_key(org_id: str, job_id: str) -> str:
    """Where a log too large for one API response is assembled for download."""
    return job_prefix(org_id, job_id) + "log.txt"


def presigned_put(key: str, size: int, content_type: str, expires_in: int) -> str:
    params = {"Bucket": bucket(), "Key": key, "ContentLength": size, "ContentType": content_type}
    url: str = client().generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
    return url


def presigned_get(key: str, expires_in: int, content_disposition: str | None = None) -> str:
    params: dict[str, Any] = {"Bucket": bucket(), "Key": key}
    if content_disposition:
        params["ResponseContentDisposition"] = content_disposition
    url: str = client().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
    return url


def object_sizes(org_id: str, job_id: str) -> dict[str, int]:
    """Key -> size of every object under the job's prefix (a job has a few dozen at most: one page),
    every page read by boto3's paginator."""
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=job_prefix(org_id, job_id))
    return {str(entry["Key"]): int(entry["Size"]) for page in pages for entry in page.get("Contents", [])}


def object_metadata(key: str) -> dict[str, str] | None:
    """The user metadata of an object, or None when there is no such object."""
    try:
        response = client().head_object(Bucket=bucket(), Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    metadata: dict[str, str] = response.get("Metadata") or {}
    return metadata


def put_text(key: str, text: bytes, metadata: dict[str, str]) -> None:
    client().put_object(Bucket=bucket(), Key=key, Body=text, ContentType="text/plain; charset=utf-8", Metadata=metadata)
