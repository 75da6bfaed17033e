"""Hangar's events, produced from the data changes themselves: the Runners and Jobs tables' DynamoDB
Streams (new and old images) feed the event processor, so no code path can change a runner or a job
without its event, and a transaction that was refused changed nothing and emits nothing.

Each stream record gives zero or more events (envelope: id, type, createdAt, orgId, data = the v1 view
after the change). An event's id is derived from the stream record's id, so a batch Lambda retries gives
the same ids again. Each event goes to the stack's EventBridge bus and, as a delivery, to each of the
tenant's webhooks that subscribes to its type.

Runner events follow the stored status: `runner.online` when it leaves `offline`, `runner.offline` when
it becomes `offline` (the agent says so, a user marks it, or the sweeper finds it stale); a heartbeat
that changes nothing else is no event (and the template's stream filter keeps it from the processor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from hangar.core import clock
from hangar.core.models import plain
from hangar.events.webhooks import fan_out
from hangar.fleet import runners
from hangar.jobs import service as jobs
from hangar.store import event_bus
from hangar.store import webhooks as webhook_store
from hangar.store.dynamo import Item, from_item
from hangar.store.jobs import Job
from hangar.store.runners import Runner
from hangar.store.webhooks import Webhook

TERMINAL_JOB_EVENTS = {"completed": "job.completed", "failed": "job.failed", "cancelled": "job.cancelled"}
TERMINAL_JOB_EVENTS["expired"] = "job.expired"


def event_id(record_id: str, event_type: str) -> str:
    return "evt_" + hashlib.sha256(f"{record_id}|{event_type}".encode()).hexdigest()[:32]


def runner_event_types(name: str, old: Item | None, new: Item | None) -> list[str]:
    if name == "INSERT":
        return ["runner.created"]
    if name == "REMOVE":
        return ["runner.deleted"]
    if old is None or new is None:
        return []
    types = []
    was_offline, is_offline = old.get("status", "offline") == "offline", new.get("status", "offline") == "offline"
    if was_offline and not is_offline:
        types.append("runner.online")
    elif is_offline and not was_offline:
        types.append("runner.offline")
    if old.get("tokenVersion") != new.get("tokenVersion"):
        types.append("runner.token_regenerated")
    return types


def job_event_types(name: str, old: Item | None, new: Item | None) -> list[str]:
    if name == "INSERT":
        return ["job.queued"] if new and new.get("status") == "queued" else []
    if name != "MODIFY" or old is None or new is None:
        return []
    before, after = old.get("status"), new.get("status")
    if before == after:
        return []
    if after == "running":
        return ["job.started"]
    if after in TERMINAL_JOB_EVENTS:
        return [TERMINAL_JOB_EVENTS[after]]
    if after == "queued" and before in ("assigned", "running"):
        return ["job.requeued"]
    return []


def _runner_data(item: Item) -> dict[str, Any]:
    data: dict[str, Any] = plain(runners.v1_view(Runner.from_item(item)))
    return data


def _job_data(item: Item) -> dict[str, Any]:
    data: dict[str, Any] = plain(jobs.v1_view(Job.from_item(item)))
    return data


# What a record's keys say it is: (event types of the change, the v1 view of an item).
_KINDS: dict[str, tuple[Callable[[str, Item | None, Item | None], list[str]], Callable[[Item], dict[str, Any]]]] = {
    "jobId": (job_event_types, _job_data),
    "runnerId": (runner_event_types, _runner_data),
}


def events_of_record(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events one stream record stands for (none for most: a claim, a log chunk, a heartbeat)."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    kind = "jobId" if "jobId" in keys else "runnerId" if "runnerId" in keys else None
    if kind is None:
        return []
    types_of, view = _KINDS[kind]
    name = str(record.get("eventName"))
    old, new = from_item(change.get("OldImage")), from_item(change.get("NewImage"))
    item = new if new is not None else old
    if item is None:
        return []
    # When the change happened, as the item says (the same on every retry of the batch).
    created_at = str(item.get("updatedAt") or item.get("createdAt") or clock.iso())
    return [
        {
            "id": event_id(str(record["eventID"]), event_type),
            "type": event_type,
            "createdAt": created_at,
            "orgId": item["orgId"],
            "data": view(item),
        }
        for event_type in types_of(name, old, new)
    ]


class EventPublisher:
    """Publishes a batch's events; reads each tenant's webhooks once per batch."""

    def __init__(self) -> None:
        self._webhooks: dict[str, list[Webhook]] = {}

    def publish_record(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        envelopes = events_of_record(record)
        if not envelopes:
            return []
        event_bus.put_events(envelopes)
        for envelope in envelopes:
            org_id = envelope["orgId"]
            if org_id not in self._webhooks:
                self._webhooks[org_id] = webhook_store.all_webhooks(org_id)
            fan_out(org_id, envelope, self._webhooks[org_id])
        return envelopes
