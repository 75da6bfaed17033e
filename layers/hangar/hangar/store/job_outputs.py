"""The JobOutputs table: a job's log chunks and its artifact records, under one key per job.

- `jobKey` = "<orgId>#<jobId>": the tenant is part of every key, so a read for one tenant's job can
  never return another's.
- `sk` = "log#<attempt:03d>#<seq:010d>" for a log chunk (the zero padding sorts chunks in order, and a
  job that is run again after its runner was lost starts a new run of seqs after the old one), or
  "artifact#<name>" for a declared artifact.
- `expiresAtEpoch`: DynamoDB's TTL deletes the item some time after it (reads filter by the clock).

A chunk's text is stored zlib-compressed (`dataZ`, binary) when that is at least a tenth smaller,
as text (`data`) otherwise: logs compress several-fold, and DynamoDB bills writes and storage by the
item's size (docs/decisions.md, "Job logs and artifacts").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from hangar.core.config import get_settings
from hangar.store.dynamo import Item, client, encode_cursor, from_item, query_all, query_page, to_item

LOG_PREFIX = "log#"
ARTIFACT_PREFIX = "artifact#"
KEY_NAMES = {"jobKey", "sk"}
# Compress a chunk only when it is worth it: small chunks gain little and cost CPU.
COMPRESS_FROM_BYTES = 256
COMPRESSION_LEVEL = 6


def table() -> str:
    return get_settings().job_outputs_table


def job_key(org_id: str, job_id: str) -> str:
    return f"{org_id}#{job_id}"


def chunk_sk(attempt: int, seq: int) -> str:
    return f"{LOG_PREFIX}{attempt:03d}#{seq:010d}"


def artifact_sk(name: str) -> str:
    return f"{ARTIFACT_PREFIX}{name}"


def _key(org_id: str, job_id: str, sk: str) -> dict[str, Any]:
    return {"jobKey": {"S": job_key(org_id, job_id)}, "sk": {"S": sk}}


# --- log chunks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredChunk:
    seq: int
    data: str
    at: str
    sk: str


def _encoded_data(data: bytes) -> dict[str, Any]:
    if len(data) >= COMPRESS_FROM_BYTES:
        packed = zlib.compress(data, COMPRESSION_LEVEL)
        if len(packed) * 10 <= len(data) * 9:
            return {"dataZ": packed}
    return {"data": data.decode("utf-8")}


def _decoded(item: Item) -> StoredChunk:
    packed = item.get("dataZ")
    text = zlib.decompress(bytes(packed.value)).decode("utf-8") if packed is not None else str(item.get("data", ""))
    return StoredChunk(seq=int(item["seq"]), data=text, at=str(item["at"]), sk=str(item["sk"]))


def put_chunk_op(
    org_id: str, job_id: str, attempt: int, seq: int, data: bytes, at: str, expires_at: int
) -> dict[str, Any]:
    """The chunk's Put inside the append transaction: only if no chunk of that attempt and seq exists."""
    item = {
        "jobKey": job_key(org_id, job_id),
        "sk": chunk_sk(attempt, seq),
        "seq": seq,
        "bytes": len(data),
        "at": at,
        "expiresAtEpoch": expires_at,
        **_encoded_data(data),
    }
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }


def get_chunk(org_id: str, job_id: str, attempt: int, seq: int) -> StoredChunk | None:
    response = client().get_item(
        TableName=table(), Key=_key(org_id, job_id, chunk_sk(attempt, seq)), ConsistentRead=True
    )
    item = from_item(response.get("Item"))
    return None if item is None else _decoded(item)


def chunk_cursor(org_id: str, job_id: str, chunk: StoredChunk) -> str:
    """The cursor that continues after `chunk`."""
    cursor = encode_cursor(_key(org_id, job_id, chunk.sk))
    assert cursor is not None
    return cursor


def read_chunks(org_id: str, job_id: str, cursor: str | None, limit: int) -> tuple[list[StoredChunk], bool]:
    """Up to `limit` chunks after `cursor` (every attempt's, in order), strongly consistent, and whether
    more may follow. One Query: it asks for one chunk more than it returns, to know."""
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "jobKey = :job AND begins_with(sk, :log)",
        "ExpressionAttributeValues": {":job": {"S": job_key(org_id, job_id)}, ":log": {"S": LOG_PREFIX}},
        "ConsistentRead": True,
        "Limit": limit + 1,
    }
    items, next_cursor = query_page(params, cursor, KEY_NAMES, ("jobKey", job_key(org_id, job_id)), LOG_PREFIX)
    chunks = [_decoded(item) for item in items]
    return chunks[:limit], len(chunks) > limit or next_cursor is not None


# --- artifact records ----------------------------------------------------------------------------------


def get_artifact(org_id: str, job_id: str, name: str) -> Item | None:
    response = client().get_item(TableName=table(), Key=_key(org_id, job_id, artifact_sk(name)), ConsistentRead=True)
    return from_item(response.get("Item"))


def put_artifact_op(artifact: Item, replacing: bool) -> dict[str, Any]:
    """The artifact's record inside the declare transaction: a new name only if the job has none of it;
    a declared name again (`replacing`) only if the record is still the one read (same id)."""
    put: dict[str, Any] = {
        "TableName": table(),
        "Item": to_item({**artifact, "sk": artifact_sk(str(artifact["name"]))}),
        "ConditionExpression": "artifactId = :id" if replacing else "attribute_not_exists(sk)",
    }
    if replacing:
        put["ExpressionAttributeValues"] = {":id": {"S": str(artifact["artifactId"])}}
    return {"Put": put}


def list_artifacts(org_id: str, job_id: str) -> list[Item]:
    """Every artifact record of the job (at most ArtifactsPerJob of them), every page."""
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "jobKey = :job AND begins_with(sk, :artifact)",
        "ExpressionAttributeValues": {":job": {"S": job_key(org_id, job_id)}, ":artifact": {"S": ARTIFACT_PREFIX}},
    }
    return query_all(params)
