"""A batch read DynamoDB answers only in part: the keys it left unread are asked again, after a backoff."""

from __future__ import annotations

from typing import Any

import pytest
from hangar.store import jobs as job_store


class PartialBatchClient:
    """Answers the first BatchGetItem with one job and the other key unprocessed, the next with the rest."""

    def __init__(self, table: str, org_id: str) -> None:
        self.table, self.org_id = table, org_id
        self.requests: list[dict[str, Any]] = []

    def job(self, job_id: str) -> dict[str, Any]:
        now = "2026-12-02T00:00:00Z"
        attributes = {"orgId": self.org_id, "jobId": job_id, "type": "scan", "status": "queued"}
        attributes |= {"createdAt": now, "updatedAt": now}
        item: dict[str, Any] = {name: {"S": value} for name, value in attributes.items()}
        item |= {"timeoutSeconds": {"N": "3600"}, "queueTimeoutSeconds": {"N": "86400"}}
        return item

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(RequestItems)
        keys = RequestItems[self.table]["Keys"]
        first, rest = keys[0], keys[1:]
        answered = {"Responses": {self.table: [self.job(first["jobId"]["S"])]}}
        if rest:
            answered["UnprocessedKeys"] = {self.table: {**RequestItems[self.table], "Keys": rest}}
        return answered


def test_unprocessed_keys_are_read_again_after_a_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = PartialBatchClient(job_store.table(), "org_batch")
    backoffs: list[int] = []
    monkeypatch.setattr(job_store, "client", lambda: fake)
    monkeypatch.setattr(job_store, "backoff", backoffs.append)
    found = job_store.get_jobs("org_batch", ["job_a", "job_b", "job_c"])
    assert [job.job_id for job in found] == ["job_a", "job_b", "job_c"]
    assert len(fake.requests) == 3
    assert backoffs == [0, 1]  # one growing backoff before each repeat, none after the last answer
