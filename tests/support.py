"""Test helpers shared by unit and integration tests (imported as `support`)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from hangar.identity.auth import OPERATOR_SCOPES, READ_SCOPES, SCOPES
from moto import mock_aws
from moto.core.config import DefaultConfig, default_user_config

from local.moto_speedups import speed_up_moto
from local.template import create_tables, functions, load_template

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def clear_client_caches() -> None:
    """Forget cached settings and AWS clients so the next call binds to the current mock."""
    from hangar.core.config import get_settings
    from hangar.identity import credentials
    from hangar.jobs import service as job_service
    from hangar.store import artifact_objects, delivery_queue, dynamo, event_bus, kms

    get_settings.cache_clear()
    dynamo.client.cache_clear()
    artifact_objects.client.cache_clear()
    kms._client.cache_clear()
    kms.REUSED.clear()
    delivery_queue._client.cache_clear()
    event_bus._client.cache_clear()
    credentials.pepper.cache_clear()
    job_service._idempotent_create.cache_clear()  # its persistence layer holds a DynamoDB client


@dataclass
class AwsStack:
    dynamodb: Any
    kms_key_id: str
    delivery_queue_url: str = ""
    calls: list[str] = field(default_factory=list)

    def scan_all(self) -> list[dict[str, Any]]:
        """Every item of every table (to look for leaked secrets)."""
        items: list[dict[str, Any]] = []
        for name in self.dynamodb.list_tables()["TableNames"]:
            items.extend(self.dynamodb.scan(TableName=name)["Items"])
        return items


# moto replaces boto3's default session on every start by default, so each test's clients would load and
# parse their service models again (0.16 s for a DynamoDB client; about 40 % of this fixture). moto still
# answers every call of a kept session; only its parsed models and credentials carry over between tests.
# (moto merges a config one section deep: the whole "core" section is given.)
_KEEP_BOTO3_SESSION: DefaultConfig = {"core": {**default_user_config["core"], "reset_boto3_session": False}}


@contextmanager
def start_aws_stack() -> Iterator[AwsStack]:
    with mock_aws(config=_KEEP_BOTO3_SESSION):
        speed_up_moto()
        clear_client_caches()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, template())
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=os.environ["ARTIFACTS_BUCKET"])
        os.environ["SETUP_TOKEN_KMS_KEY_ID"] = key_id
        # The webhook delivery queue and the event bus (events and webhooks).
        queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="hangar-test-deliveries")
        os.environ["DELIVERY_QUEUE_URL"] = queue_url["QueueUrl"]
        boto3.client("events", region_name="us-east-1").create_event_bus(Name="hangar-test-events")
        os.environ["EVENT_BUS_NAME"] = "hangar-test-events"
        clear_client_caches()
        try:
            yield AwsStack(dynamodb=dynamodb, kms_key_id=key_id, delivery_queue_url=queue_url["QueueUrl"])
        finally:
            for name in ("SETUP_TOKEN_KMS_KEY_ID", "DELIVERY_QUEUE_URL", "EVENT_BUS_NAME"):
                os.environ.pop(name, None)
            clear_client_caches()


@cache
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@cache
def handler_module(logical_id: str) -> ModuleType:
    """A function's handler module, loaded from the file template.yaml names."""
    spec_of = functions(template(), ROOT)[f"{logical_id}Function"]
    spec = importlib.util.spec_from_file_location(f"hangar_test_fn_{logical_id}", spec_of.module_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeLambdaContext:
    function_name = "hangar-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:hangar-test"
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/hangar-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def refusal_reason(policy: dict[str, Any]) -> dict[str, Any] | None:
    """An authorizer's refusal (hangar.api.authorizer.deny): an API-wide Deny with no usage key, whose context
    is exactly the reason the ACCESS_DENIED gateway response renders; that context, or None."""
    statements = policy.get("policyDocument", {}).get("Statement", [])
    refused = (
        policy.get("principalId") == "refused"
        and [statement["Effect"] for statement in statements] == ["Deny"]
        and statements[0]["Resource"].endswith("/prod/*")
        and "usageIdentifierKey" not in policy
        and set(policy.get("context") or {}) == {"errorCode", "errorMessage"}
    )
    return dict(policy["context"]) if refused else None


def is_refusal(policy: dict[str, Any], code: str = "unauthorized") -> bool:
    """An authorizer's refusal with that reason code."""
    reason = refusal_reason(policy)
    return reason is not None and reason["errorCode"] == code


def load_event(logical_id: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{logical_id}.json").read_text())
    return event


def unique_org() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


# Scope sets as the authorizer context carries them (space-separated), from hangar's own lists.
ALL_SCOPES = " ".join(SCOPES)
ALL_BUT_OPERATOR = " ".join(scope for scope in SCOPES if scope not in OPERATOR_SCOPES)
READ_ONLY = " ".join(scope for scope in SCOPES if scope in READ_SCOPES)
OPERATOR = " ".join(scope for scope in SCOPES if scope in OPERATOR_SCOPES)


def user_event(
    logical_id: str,
    org_id: str,
    *,
    scopes: str = ALL_SCOPES,
    body: Any = ...,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The function's events/ fixture for a user of `org_id`, with body, path and query replaced."""
    event = copy.deepcopy(load_event(logical_id))
    event["requestContext"]["authorizer"].update({"orgId": org_id, "scopes": scopes})
    return _customise(event, body, path_params, query)


def runner_event(
    logical_id: str,
    org_id: str,
    runner_id: str,
    token_version: int = 1,
    *,
    labels: str = "",
    body: Any = ...,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event(logical_id))
    event["requestContext"]["authorizer"].update(
        {"orgId": org_id, "runnerId": runner_id, "tokenVersion": token_version, "labels": labels}
    )
    return _customise(event, body, None, None)


def _customise(
    event: dict[str, Any], body: Any, path_params: dict[str, str] | None, query: dict[str, str] | None
) -> dict[str, Any]:
    if body is not ...:
        event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    if path_params:
        event["pathParameters"] = path_params
        path = event["resource"]
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", value)
        event["path"] = path
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return event


def invoke(logical_id: str, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """Calls the handler in-process; returns (status, parsed body, headers)."""
    response = handler_module(logical_id).handler(event, FakeLambdaContext())
    body = response.get("body")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, values[-1])
    return response["statusCode"], parsed, headers


def ensure_agent_wheel() -> Path:
    """The agent wheel the install script carries, built or brought up to date by `make agent-wheel` (the
    Makefile is its one recipe; `make build`, `make run` and `make test` run it too)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "agent-wheel"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"make agent-wheel failed:\n{done.stdout}{done.stderr}"
    from hangar.fleet.install_script import bundled_agent_wheel

    wheel = bundled_agent_wheel()
    assert wheel is not None, "make agent-wheel built no wheel"
    return ROOT / "layers" / "hangar" / "hangar" / "fleet" / "agent_wheel" / wheel.name


def sqs_event(
    message: dict[str, Any], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:hangar-test-deliveries"
) -> dict[str, Any]:
    """The event Lambda's SQS poller gives a function for one received message (ReceiveMessage's form)."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}
