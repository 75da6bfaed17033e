"""The webhook delivery queue (SQS): one message per delivery to attempt; a failed attempt's message
comes back after its backoff (its visibility timeout is set to it)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import boto3

from hangar.core.config import get_settings

# SQS's limits: a message may be delayed 15 minutes at most, hidden 12 hours at most.
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600


@lru_cache(maxsize=1)
def _client() -> Any:
    return boto3.client("sqs")


def send_delivery(org_id: str, webhook_id: str, delivery_id: str, delay_seconds: int = 0) -> None:
    body = json.dumps({"orgId": org_id, "webhookId": webhook_id, "deliveryId": delivery_id})
    _client().send_message(
        QueueUrl=get_settings().delivery_queue_url,
        MessageBody=body,
        DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
    )


def hide_for(receipt_handle: str, seconds: int) -> None:
    """The message comes back to the delivery function after `seconds` (at most 12 hours)."""
    _client().change_message_visibility(
        QueueUrl=get_settings().delivery_queue_url,
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, int(seconds))),
    )
