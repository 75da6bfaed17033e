"""Helpers shared by the job log and artifact tests (imported as `job_outputs_helpers`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from hangar.store import dynamo
from support import invoke, runner_event, user_event


def append(
    org: str, runner_id: str, job_id: str, seq: Any, data: Any, token_version: int = 1, **extra: Any
) -> tuple[int, Any]:
    # UTF-8 as is, as an agent sends it (`\u00e9` escapes would triple non-ASCII text on the wire).
    body = json.dumps({"jobId": job_id, "seq": seq, "data": data, **extra}, ensure_ascii=False)
    status, response, _ = invoke("AppendJobLog", runner_event("AppendJobLog", org, runner_id, token_version, body=body))
    return status, response


def read_logs(
    org: str,
    job_id: str,
    scopes: str | None = None,
    headers: dict[str, str] | None = None,
    **query: str,
) -> tuple[int, Any, dict[str, str]]:
    event = user_event(
        "GetJobLogs", org, path_params={"jobId": job_id}, query=query, **({"scopes": scopes} if scopes else {})
    )
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    return invoke("GetJobLogs", event)


def whole_log(org: str, job_id: str) -> str:
    """Every chunk's data, page after page, as a follower reads them."""
    text, cursor = "", None
    while True:
        status, page, _ = read_logs(org, job_id, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        text += "".join(chunk["data"] for chunk in page["chunks"])
        if page["complete"] or not page["chunks"]:
            return text
        cursor = page["nextCursor"]


def declare(
    org: str, runner_id: str, job_id: str, name: str = "report.sarif", size: int = 5, version: int = 1, **extra: Any
) -> tuple[int, Any]:
    body = {"jobId": job_id, "name": name, "contentType": "application/sarif+json", "size": size, **extra}
    event = runner_event("CreateJobArtifact", org, runner_id, version, body=body)
    status, response, _ = invoke("CreateJobArtifact", event)
    return status, response


def list_artifacts(org: str, job_id: str, scopes: str | None = None) -> tuple[int, Any]:
    event = user_event("ListJobArtifacts", org, path_params={"jobId": job_id}, **({"scopes": scopes} if scopes else {}))
    status, body, _ = invoke("ListJobArtifacts", event)
    return status, body


def upload_object(org: str, job_id: str, artifact_id: str, body: bytes, content_type: str) -> None:
    """What a runner's PUT to the presigned URL leaves in the bucket (moto checks no signature in-process)."""
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=os.environ["ARTIFACTS_BUCKET"], Key=f"{org}/{job_id}/{artifact_id}", Body=body, ContentType=content_type
    )


def output_items(org: str, job_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """The job's items in the JobOutputs table, as stored."""
    values = {":job": {"S": f"{org}#{job_id}"}}
    condition = "jobKey = :job"
    if prefix:
        condition += " AND begins_with(sk, :prefix)"
        values[":prefix"] = {"S": prefix}
    response = dynamo.client().query(
        TableName="JobOutputsTable", KeyConditionExpression=condition, ExpressionAttributeValues=values
    )
    return [item for item in (dynamo.from_item(raw) for raw in response["Items"]) if item is not None]


@contextmanager
def settings(**values: str) -> Iterator[None]:
    """Environment-backed settings for the block (hangar reads them once, so the cache is cleared)."""
    from hangar.core.config import get_settings

    previous = {name: os.environ.get(name.upper()) for name in values}
    os.environ.update({name.upper(): value for name, value in values.items()})
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name.upper(), None)
            else:
                os.environ[name.upper()] = value
        get_settings.cache_clear()
