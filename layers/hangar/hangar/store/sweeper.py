"""What the sweeper reads and writes on the Runners table: stale live runners (LiveByHeartbeat, sparse,
KEYS_ONLY) and the conditional write that takes one offline unless a heartbeat got there first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hangar import clock
from hangar.store import runners as runner_store
from hangar.store.dynamo import client
from hangar.store.jobs import Raw, apply, runner_update

LIVE_INDEX = "LiveByHeartbeat"


@dataclass(frozen=True)
class StaleRunner:
    org_id: str
    runner_id: str
    last_heartbeat: Raw  # as stored: the offline write is conditional on exactly this value


def stale_runners(shard: str, heartbeat_before: float) -> Iterator[list[StaleRunner]]:
    """Pages of live runners in `shard` whose last heartbeat is older than `heartbeat_before`."""
    params: dict[str, Any] = {
        "TableName": runner_store.table(),
        "IndexName": LIVE_INDEX,
        "KeyConditionExpression": "liveShard = :shard AND lastHeartbeatEpoch < :before",
        "ExpressionAttributeValues": {":shard": {"S": shard}, ":before": {"N": str(heartbeat_before)}},
    }
    while True:
        response = client().query(**params)
        yield [
            StaleRunner(
                org_id=raw["orgId"]["S"], runner_id=raw["runnerId"]["S"], last_heartbeat=Raw(raw["lastHeartbeatEpoch"])
            )
            for raw in response.get("Items", [])
        ]
        if "LastEvaluatedKey" not in response:
            return
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def mark_stale_runner_offline(stale: StaleRunner) -> bool:
    """Writes the runner offline (out of the live index, pending cancellations dropped) only if its last
    heartbeat is still the one the sweeper read: a heartbeat racing the sweep wins. True when written."""
    written, _ = apply(
        runner_update(
            stale.org_id,
            stale.runner_id,
            set={"status": "offline", "updatedAt": clock.iso()},
            remove=("liveShard", "cancelledJobs"),
            condition="attribute_exists(#liveShard) AND #lastHeartbeatEpoch = :seen",
            values={"seen": stale.last_heartbeat},
            return_old_on_failure=False,
        ),
        return_new=False,
    )
    return written
