"""/v1/webhooks in-process against moto: create (secret once, stored encrypted), list, get, delete, ping,
deliveries, redeliver; the limit of 20; tenant isolation, scopes and bad input on every route; the
retry schedule and signatures of the delivery function."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hangar.core import clock
from hangar.core.config import get_settings
from hangar.events import delivery as webhook_delivery
from support import AwsStack, FakeLambdaContext, handler_module, invoke, sqs_event, unique_org, user_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from webhook_receiver import Receiver, receiver

SCOPE = "webhooks:manage"
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address: no DNS needed to check it
WEBHOOK_ID = "whk_0123456789abcdef"
DELIVERY_ID = "dlv_018f00000000abcdef012345"
ROUTES: dict[str, dict[str, str]] = {
    "ListWebhooks": {},
    "GetWebhook": {"webhookId": WEBHOOK_ID},
    "DeleteWebhook": {"webhookId": WEBHOOK_ID},
    "TestWebhook": {"webhookId": WEBHOOK_ID},
    "ListWebhookDeliveries": {"webhookId": WEBHOOK_ID},
    "RedeliverWebhookDelivery": {"webhookId": WEBHOOK_ID, "deliveryId": DELIVERY_ID},
}


def create(org: str, body: Any = None, scopes: str = SCOPE) -> tuple[int, Any]:
    body = body if body is not None else {"url": PUBLIC_URL, "events": ["*"]}
    status, response, _ = invoke("CreateWebhook", user_event("CreateWebhook", org, scopes=scopes, body=body))
    return status, response


def created(org: str, url: str = PUBLIC_URL, events: list[str] | None = None) -> dict[str, Any]:
    status, body = create(org, {"url": url, "events": events or ["*"], "description": "ci"})
    assert status == 201, body
    return dict(body)


def call(name: str, org: str, params: dict[str, str], scopes: str = SCOPE, query: Any = None) -> tuple[int, Any]:
    event = user_event(name, org, scopes=scopes, path_params=params or None, query=query)
    status, body, _ = invoke(name, event)
    return status, body


@pytest.fixture
def local_receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """Loopback URLs allowed (AllowInsecureWebhooks, as in make run) and a receiver on 127.0.0.1."""
    monkeypatch.setenv("ALLOW_INSECURE_WEBHOOKS", "true")
    get_settings.cache_clear()
    with receiver() as hooks:
        yield hooks
    get_settings.cache_clear()


def queued_messages(aws: AwsStack) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    found = sqs.receive_message(QueueUrl=aws.delivery_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return found


def deliver(message: dict[str, Any]) -> dict[str, Any]:
    event = sqs_event(message)
    response: dict[str, Any] = handler_module("WebhookDelivery").handler(event, FakeLambdaContext())
    return response


def test_create_shows_the_secret_once_and_stores_it_encrypted(aws: AwsStack) -> None:
    org = unique_org()
    webhook = created(org, events=["job.completed", "job.failed"])
    assert set(webhook) == {"id", "url", "events", "description", "secret", "createdAt"}
    assert webhook["secret"].startswith("whsec_") and webhook["events"] == ["job.completed", "job.failed"]
    status, got = call("GetWebhook", org, {"webhookId": webhook["id"]})
    assert status == 200 and got == {k: v for k, v in webhook.items() if k != "secret"}
    status, listed = call("ListWebhooks", org, {})
    assert status == 200 and listed == {"webhooks": [got], "nextCursor": None}
    assert webhook["secret"] not in json.dumps(aws.scan_all())
    status, deleted = call("DeleteWebhook", org, {"webhookId": webhook["id"]})
    assert status == 200 and deleted == {"id": webhook["id"], "deleted": True}
    assert call("GetWebhook", org, {"webhookId": webhook["id"]})[0] == 404


def test_the_21st_webhook_is_refused_and_a_deletion_makes_room(aws: AwsStack) -> None:
    org = unique_org()
    ids = [created(org)["id"] for _ in range(20)]
    status, body = create(org)
    assert status == 403 and body["error"]["code"] == "webhook_limit_reached", body
    assert call("DeleteWebhook", org, {"webhookId": ids[0]})[0] == 200
    assert create(org)[0] == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": PUBLIC_URL}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["job.nope"]}, "events"),
        ({"events": ["*"]}, "url"),
        ({"url": "", "events": ["*"]}, "url"),
        ({"url": "https://" + "a" * 2100 + ".com", "events": ["*"]}, "url"),
        ({"url": "http://93.184.215.14/hooks", "events": ["*"]}, "url"),
        ({"url": "https://127.0.0.1/hooks", "events": ["*"]}, "url"),
        ({"url": "https://localhost/hooks", "events": ["*"]}, "url"),
        ({"url": "https://10.0.0.1/hooks", "events": ["*"]}, "url"),
        ({"url": "https://169.254.169.254/latest", "events": ["*"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(aws: AwsStack, body: dict[str, Any], field: str) -> None:
    org = unique_org()
    status, response = create(org, body)
    assert status == 400, response
    assert response["error"]["field"] == field, response
    assert call("ListWebhooks", org, {})[1]["webhooks"] == []


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_bad_path_or_query_input_is_a_400(aws: AwsStack, name: str) -> None:
    params = {key: "x" * 200 for key in ROUTES[name]}
    query = {"limit": "0"} if name.startswith("List") else None
    status, body = call(name, unique_org(), params, query=query)
    assert status == 400, body


@pytest.mark.parametrize("name", ["CreateWebhook", *sorted(ROUTES)])
def test_every_route_needs_the_webhooks_scope(aws: AwsStack, name: str) -> None:
    org = unique_org()
    webhook = created(org)
    params = {key: webhook["id"] if key == "webhookId" else DELIVERY_ID for key in ROUTES.get(name, {})}
    event = user_event(
        name, org, scopes="runners:read runners:manage jobs:manage keys:manage", path_params=params or None
    )
    if name == "CreateWebhook":
        event["body"] = json.dumps({"url": PUBLIC_URL, "events": ["*"]})
    status, body, _ = invoke(name, event)
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_another_tenants_webhook_is_a_404(aws: AwsStack, name: str) -> None:
    owner, other = unique_org(), unique_org()
    webhook = created(owner)
    status, ping = call("TestWebhook", owner, {"webhookId": webhook["id"]})
    assert status == 202, ping
    params = {key: webhook["id"] if key == "webhookId" else ping["id"] for key in ROUTES[name]}
    status, body = call(name, other, params)
    if name == "ListWebhooks":
        assert status == 200 and body["webhooks"] == []
    else:
        assert status == 404, body
    assert call("GetWebhook", owner, {"webhookId": webhook["id"]})[0] == 200


def test_a_ping_is_delivered_signed_and_listed(aws: AwsStack, local_receivers: Receiver) -> None:
    org = unique_org()
    webhook = created(org, url=local_receivers.url)
    status, ping = call("TestWebhook", org, {"webhookId": webhook["id"]})
    assert status == 202 and ping["status"] == "pending" and ping["eventType"] == "ping", ping
    (message,) = queued_messages(aws)
    assert deliver(message) == {"batchItemFailures": []}
    (received,) = local_receivers.received
    assert received.signature_valid(webhook["secret"])
    assert received.event["type"] == "ping" and received.event["data"]["webhook"]["id"] == webhook["id"]
    assert received.headers["hangar-event-id"] == ping["eventId"] == received.event["id"]
    status, listed = call("ListWebhookDeliveries", org, {"webhookId": webhook["id"]})
    assert status == 200 and listed["deliveries"][0]["status"] == "succeeded"
    assert listed["deliveries"][0]["attempts"] == 1 and listed["deliveries"][0]["lastStatusCode"] == 200
    assert webhook["secret"] not in json.dumps(listed)


def test_the_retry_schedule_is_exponential_with_jitter_over_about_a_day(
    aws: AwsStack, local_receivers: Receiver
) -> None:
    local_receivers.default = 500
    org = unique_org()
    webhook = created(org, url=local_receivers.url)
    _, ping = call("TestWebhook", org, {"webhookId": webhook["id"]})
    started, waits = clock.now(), []
    for _ in range(webhook_delivery.MAX_ATTEMPTS + 5):
        step = webhook_delivery.attempt_delivery(org, webhook["id"], ping["id"])
        if step is None:
            break
        waits.append(step.seconds)
        clock.advance(step.seconds)
    _, listed = call("ListWebhookDeliveries", org, {"webhookId": webhook["id"]})
    (delivery,) = listed["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == webhook_delivery.MAX_ATTEMPTS >= 8
    assert len(local_receivers.received) == delivery["attempts"] == len(delivery["attemptHistory"])
    assert len({r.headers["hangar-event-id"] for r in local_receivers.received}) == 1
    for wait, base in zip(waits, webhook_delivery.RETRY_DELAYS, strict=True):
        assert base * 0.8 - 1 <= wait <= base * 1.2 + 1
    assert 20 * 3600 <= clock.now() - started <= 28 * 3600


def test_a_failed_attempt_queues_its_retry_and_an_early_message_waits(aws: AwsStack, local_receivers: Receiver) -> None:
    local_receivers.default = 500
    org = unique_org()
    webhook = created(org, url=local_receivers.url)
    call("TestWebhook", org, {"webhookId": webhook["id"]})
    (message,) = queued_messages(aws)
    assert deliver(message) == {"batchItemFailures": []}  # attempted, failed: a new (delayed) message
    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=aws.delivery_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    # The same message again (a duplicate) is early: it is hidden and handed back, and nothing is sent.
    assert deliver(message) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert len(local_receivers.received) == 1


def test_redeliver_sends_the_same_event_again_as_a_new_delivery(aws: AwsStack, local_receivers: Receiver) -> None:
    org = unique_org()
    webhook = created(org, url=local_receivers.url)
    _, ping = call("TestWebhook", org, {"webhookId": webhook["id"]})
    deliver(queued_messages(aws)[0])
    status, again = call("RedeliverWebhookDelivery", org, {"webhookId": webhook["id"], "deliveryId": ping["id"]})
    assert status == 202 and again["id"] != ping["id"] and again["eventId"] == ping["eventId"], again
    deliver(queued_messages(aws)[0])
    assert [r.event["id"] for r in local_receivers.received] == [ping["eventId"]] * 2
    assert local_receivers.received[0].body == local_receivers.received[1].body


def test_a_deleted_webhooks_pending_delivery_fails_without_a_request(aws: AwsStack, local_receivers: Receiver) -> None:
    org = unique_org()
    webhook = created(org, url=local_receivers.url)
    call("TestWebhook", org, {"webhookId": webhook["id"]})
    call("DeleteWebhook", org, {"webhookId": webhook["id"]})
    assert deliver(queued_messages(aws)[0]) == {"batchItemFailures": []}
    assert local_receivers.received == []
