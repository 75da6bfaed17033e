"""The Runners table: `orgId` + `runnerId`. Every read goes through the caller's tenant key."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hangar.core.config import get_settings
from hangar.store.dynamo import (
    Item,
    Update,
    apply,
    apply_if,
    client,
    delete_op,
    from_item,
    query_page,
    query_pages,
    to_item,
)
from hangar.store.records import Record

RUNNER_KEY_NAMES = {"orgId", "runnerId"}


@dataclass(frozen=True, slots=True)
class Runner(Record):
    """A runner item, with the defaults of the attributes an item may lack."""

    org_id: str
    runner_id: str
    name: str = ""
    labels: tuple[str, ...] = ()
    status: str = "offline"
    configured_concurrency: int = 1
    current_jobs: int = 0
    jobs_completed: int = 0
    token_id: str | None = None
    token_version: int = 0  # none stored: no token is the runner's
    setup_token: str | None = None  # the runner token's KMS ciphertext, until the runner authenticates
    version: str | None = None
    container_engine: str | None = None
    system_info: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None
    provider_state: dict[str, Any] | None = None
    last_heartbeat_at: str | None = None
    last_heartbeat_epoch: float | None = None  # as stored (int or float): the sweeper compares it exactly
    live_shard: str | None = None  # in the live index while not offline
    held_jobs: frozenset[str] = frozenset()
    cancelled_jobs: frozenset[str] = frozenset()
    created_at: str | None = None
    updated_at: str | None = None


def runner_from(item: Item | None) -> Runner | None:
    return None if item is None else Runner.from_item(item)


def table() -> str:
    return get_settings().runners_table


def runner_key(org_id: str, runner_id: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "runnerId": {"S": runner_id}}


def get_runner(org_id: str, runner_id: str) -> Runner | None:
    response = client().get_item(TableName=table(), Key=runner_key(org_id, runner_id), ConsistentRead=True)
    return runner_from(from_item(response.get("Item")))


def _runners_query(org_id: str, page_size: int) -> dict[str, Any]:
    return {
        "TableName": table(),
        "KeyConditionExpression": "orgId = :org",
        "ExpressionAttributeValues": {":org": {"S": org_id}},
        "Limit": page_size,
        "ConsistentRead": True,  # a runner just created, changed or deleted is listed as it is
    }


def list_runners(org_id: str, limit: int, cursor: str | None) -> tuple[list[Runner], str | None]:
    """A page of the tenant's runners, by runner id, for a client (with the cursor of the next page)."""
    items, next_cursor = query_page(_runners_query(org_id, limit), cursor, RUNNER_KEY_NAMES, ("orgId", org_id))
    return [Runner.from_item(item) for item in items], next_cursor


def runner_pages(org_id: str, page_size: int) -> Iterator[list[Runner]]:
    """The tenant's runners by runner id, a page at a time, read lazily to the end by boto3's paginator:
    the caller stops reading when it has what it needs."""
    for page in query_pages(_runners_query(org_id, page_size)):
        yield [Runner.from_item(item) for item in map(from_item, page) if item is not None]


def put_runner_op(runner: Runner) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(runner.to_item()),
            "ConditionExpression": "attribute_not_exists(runnerId)",
        }
    }


def delete_runner_op(org_id: str, runner_id: str) -> dict[str, Any]:
    return delete_op(table(), runner_key(org_id, runner_id), "attribute_exists(#runnerId)")


def runner_update(org_id: str, runner_id: str, **kwargs: Any) -> Update:
    """An UpdateItem of the runner (`hangar.store.dynamo.Update` fields: set, add, condition, ...)."""
    return Update(table=table(), key=runner_key(org_id, runner_id), **kwargs)


def update_runner(
    org_id: str, runner_id: str, set_fields: dict[str, Any], remove_fields: tuple[str, ...] = ()
) -> Runner | None:
    """Applies the changes to an existing runner and returns it, or None when it does not exist."""
    return runner_from(
        apply_if(
            runner_update(
                org_id, runner_id, set=set_fields, remove=remove_fields, condition="attribute_exists(#runnerId)"
            )
        )
    )


def update_runner_op(
    org_id: str, runner_id: str, set_fields: dict[str, Any], seen_token_id: str | None = None
) -> dict[str, Any]:
    """A TransactWriteItems Update of an existing runner; with `seen_token_id`, only while that is still
    its token (a change that must reach the token item too is refused when the token was regenerated)."""
    condition = "attribute_exists(#runnerId)"
    values: dict[str, Any] = {}
    if seen_token_id is not None:
        condition += " AND #tokenId = :seenTokenId"
        values["seenTokenId"] = seen_token_id
    return runner_update(org_id, runner_id, set=set_fields, condition=condition, values=values).op()


# The live-runner index is sharded so heartbeats from a large fleet spread over partitions (each index
# partition key takes at most 1,000 WCU/s, and a heartbeat rewrites its entry: 2); INDEX_SHARDS (template
# parameter IndexShards, README "Sizing") sets how many. The sweeper queries each shard below the cut-off.


def live_shard(runner_id: str) -> str:
    """The LiveByHeartbeat partition of a runner that is not offline."""
    return f"live#{zlib.crc32(runner_id.encode()) % get_settings().index_shards}"


def live_shards() -> list[str]:
    """Every LiveByHeartbeat partition (live_shard maps runner ids onto these)."""
    return [f"live#{index}" for index in range(get_settings().index_shards)]


# Every runner-route write carries it (value `tokenVersion`: the caller's), so a regenerated or deleted
# runner's old token fails on its next call even while the authorizer's cached Allow lives.
TOKEN_GUARD = "attribute_exists(#runnerId) AND #tokenVersion = :tokenVersion"


def update_runner_guarded(
    org_id: str, runner_id: str, token_version: int, set_fields: dict[str, Any], remove_fields: tuple[str, ...] = ()
) -> tuple[bool, Runner | None]:
    """A runner-route write under TOKEN_GUARD: (True, the runner as it is now), or (False, the runner as
    it is — None when deleted) when the caller's token was regenerated or the runner deleted (401)."""
    written, item = apply(
        runner_update(
            org_id,
            runner_id,
            set=set_fields,
            remove=remove_fields,
            condition=TOKEN_GUARD,
            values={"tokenVersion": token_version},
        )
    )
    return written, runner_from(item)


def rotate_token_op(
    org_id: str, runner_id: str, seen_version: int, token_id: str, setup_token: str | None, updated_at: str
) -> dict[str, Any]:
    """A TransactWriteItems Update pointing the runner at a new token (tokenVersion + 1), only if its token
    is still at `seen_version`; the new token's KMS ciphertext replaces the old one (or none is kept)."""
    set_fields: dict[str, Any] = {"tokenId": token_id, "tokenVersion": seen_version + 1, "updatedAt": updated_at}
    remove_fields: tuple[str, ...] = ()
    if setup_token:
        set_fields["setupToken"] = setup_token
    else:
        remove_fields = ("setupToken",)
    return runner_update(
        org_id,
        runner_id,
        set=set_fields,
        remove=remove_fields,
        condition="attribute_exists(#runnerId) AND #tokenVersion = :seenVersion",
        values={"seenVersion": seen_version},
    ).op()
