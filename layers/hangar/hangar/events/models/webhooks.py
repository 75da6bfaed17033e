"""Webhooks: the creation request, the views (the secret only in the one answer that creates it) and the
event types a webhook can subscribe to."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from hangar.core.models import StrictModel, View

EVENT_TYPES = (
    "runner.created",
    "runner.online",
    "runner.offline",
    "runner.deleted",
    "runner.token_regenerated",
    "job.queued",
    "job.started",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.requeued",
    "job.expired",
    "ping",
)
ALL_EVENTS = "*"
MAX_WEBHOOK_URL_LENGTH = 2048

EventType = Annotated[str, Field(json_schema_extra={"enum": [*EVENT_TYPES, ALL_EVENTS]})]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class CreateWebhookRequest(StrictModel):
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_WEBHOOK_URL_LENGTH)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]
    description: Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None


class WebhookView(View):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    createdAt: str


class CreatedWebhookView(WebhookView):
    """POST /v1/webhooks: the `whsec_` signing secret appears here and nowhere else, ever."""

    secret: str


class WebhookList(View):
    webhooks: list[WebhookView]
    nextCursor: str | None = None


class DeliveryAttempt(View):
    at: str
    statusCode: int | None = None
    error: str | None = None


class DeliveryView(View):
    id: str
    webhookId: str
    eventId: str
    eventType: str
    status: DeliveryStatus
    attempts: int
    lastStatusCode: int | None = None
    lastError: str | None = None
    createdAt: str
    nextAttemptAt: str | None = None
    attemptHistory: list[DeliveryAttempt] = Field(default_factory=list)


class DeliveryList(View):
    deliveries: list[DeliveryView]
    nextCursor: str | None = None


class EventEnvelope(View):
    """What a delivery's body and an EventBridge event's detail carry."""

    id: str
    type: str
    createdAt: str
    orgId: str
    data: dict[str, Any]
