"""Job creation's Idempotency-Key machinery as Powertools builds it: one IdempotencyConfig and one
persistence layer per process (not per call), and a replay marked by the config's `response_hook`."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from builders import create_job
from hangar.jobs import service
from hangar.jobs.models.jobs import CreateJobRequest
from hangar.store import jobs as job_store
from support import AwsStack, FakeLambdaContext, unique_org


def test_the_config_and_the_persistence_layer_are_built_once_per_process(aws: AwsStack) -> None:
    service._idempotent_create.cache_clear()
    with (
        patch.object(job_store, "idempotency_layer", wraps=job_store.idempotency_layer) as built,
        patch.object(service, "IdempotencyConfig", side_effect=AssertionError("a config per call")),
    ):
        for org in (unique_org(), unique_org()):
            for _ in range(2):  # a create and its replay
                status, body, _ = create_job(org, headers={"Idempotency-Key": "once"}, labels=["linux"])
                assert status == 201, body

    assert built.call_count == 1


def test_a_create_without_a_key_builds_no_persistence_layer(aws: AwsStack) -> None:
    service._idempotent_create.cache_clear()
    with patch.object(job_store, "idempotency_layer", side_effect=AssertionError("built without a key")):
        status, body, headers = create_job(unique_org(), labels=["linux"])

    assert status == 201, body
    assert "Idempotent-Replayed" not in headers


def test_the_response_hook_marks_a_replay_and_only_a_replay(aws: AwsStack) -> None:
    org = unique_org()
    key = {"Idempotency-Key": "hooked"}
    with patch.object(service.IDEMPOTENCY_CONFIG, "response_hook", wraps=service._mark_replay) as hook:
        status, first, headers = create_job(org, headers=key, labels=["linux"])
        assert status == 201 and "Idempotent-Replayed" not in headers
        assert hook.call_count == 0
        status, again, headers = create_job(org, headers=key, labels=["linux"])

    assert status == 201 and headers.get("Idempotent-Replayed") == "true"
    assert again == first
    assert hook.call_count == 1
    stored_job, record = hook.call_args.args
    assert stored_job["jobId"] == first["id"]
    assert record.status == "COMPLETED"


def test_each_keyed_create_registers_its_own_lambda_context(aws: AwsStack) -> None:
    """The config is shared by the process's invocations: each keyed create puts its own context on it
    (its remaining time bounds the in-progress record), and a create with none leaves none behind."""
    org = unique_org()
    request = CreateJobRequest.model_validate({"type": "scan", "repositoryConfig": "abc123"})
    context = FakeLambdaContext()

    service.create_job(org, request, "with-context", context)
    assert service.IDEMPOTENCY_CONFIG.lambda_context is context
    with pytest.warns(UserWarning, match="remaining time"):  # Powertools: no in-progress expiry then
        job, replayed = service.create_job(org, request, "without-context", None)
    assert service.IDEMPOTENCY_CONFIG.lambda_context is None
    assert (job.org_id, replayed) == (org, False)
