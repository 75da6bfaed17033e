"""What the sweeper reads on the Runners table: stale live runners (LiveByHeartbeat, sparse, KEYS_ONLY).
Taking one offline is `hangar.jobs.recovery.retire_runner`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hangar.store import runners as runner_store
from hangar.store.dynamo import Raw, query_pages

LIVE_INDEX = "LiveByHeartbeat"


@dataclass(frozen=True)
class StaleRunner:
    org_id: str
    runner_id: str
    last_heartbeat: Raw  # as stored: the offline write is conditional on exactly this value


def stale_runners(shard: str, heartbeat_before: float, page_size: int) -> Iterator[list[StaleRunner]]:
    """Pages of at most `page_size` live runners in `shard` whose last heartbeat is older than
    `heartbeat_before`, the longest silent first."""
    params: dict[str, Any] = {
        "TableName": runner_store.table(),
        "IndexName": LIVE_INDEX,
        "Limit": page_size,
        "KeyConditionExpression": "liveShard = :shard AND lastHeartbeatEpoch < :before",
        "ExpressionAttributeValues": {":shard": {"S": shard}, ":before": {"N": str(heartbeat_before)}},
    }
    for page in query_pages(params):
        yield [
            StaleRunner(
                org_id=raw["orgId"]["S"], runner_id=raw["runnerId"]["S"], last_heartbeat=Raw(raw["lastHeartbeatEpoch"])
            )
            for raw in page
        ]
