"""The stack's EventBridge bus: every Hangar event is put there for AWS-native consumers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import boto3

from hangar.core.config import get_settings

SOURCE = "hangar"
PUT_EVENTS_BATCH = 10  # PutEvents takes at most 10 entries


class PutEventsFailed(Exception):
    """EventBridge refused some entries; the stream batch is retried (event ids stay the same)."""


@lru_cache(maxsize=1)
def _client() -> Any:
    return boto3.client("events")


def put_events(envelopes: Iterable[dict[str, Any]]) -> None:
    bus = get_settings().event_bus_name
    entries = [
        {"Source": SOURCE, "DetailType": envelope["type"], "Detail": json.dumps(envelope), "EventBusName": bus}
        for envelope in envelopes
    ]
    if not bus:
        return
    for start in range(0, len(entries), PUT_EVENTS_BATCH):
        response = _client().put_events(Entries=entries[start : start + PUT_EVENTS_BATCH])
        if response.get("FailedEntryCount"):
            codes = sorted({str(entry.get("ErrorCode")) for entry in response["Entries"] if entry.get("ErrorCode")})
            raise PutEventsFailed(f"EventBridge refused {response['FailedEntryCount']} entries: {', '.join(codes)}")
