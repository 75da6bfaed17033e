"""The design's DynamoDB budget per runner-route request as a regression gate in `make test`: section 1 of
`make bench` (the real handlers in-process against moto, every DynamoDB call counted), a few seconds."""

from __future__ import annotations

from bench.request_calls import TARGET_CALLS, measure_dynamodb_calls_per_request


def test_runner_routes_stay_within_their_dynamodb_call_targets() -> None:
    measured = {request.name: request for request in measure_dynamodb_calls_per_request(repeats=1)}

    assert set(measured) == set(TARGET_CALLS)
    for name, target in TARGET_CALLS.items():
        request = measured[name]
        problem = f"{name}: {request.calls} DynamoDB calls ({request.operations}), target {target}"
        assert 1 <= request.calls <= target, problem


def test_log_appends_and_reads_stay_within_their_dynamodb_call_targets() -> None:
    """`make bench` section 6: a chunk is one read of the job and one transaction, a page one read and one Query."""
    from bench.log_costs import APPEND_TARGET_CALLS, READ_TARGET_CALLS, measure_log_costs

    costs = measure_log_costs(repeats=1)
    for chunk in costs.chunks:
        assert chunk.request.calls == APPEND_TARGET_CALLS, chunk.request
        assert chunk.request.operations == "GetItem + TransactWriteItems"
    assert costs.read.request.calls == READ_TARGET_CALLS, costs.read.request
    # Scanner output is stored compressed: a full chunk takes well under half its bytes.
    full = next(chunk for chunk in costs.chunks if chunk.corpus == "scanner log" and chunk.chunk_bytes == 64 * 1024)
    assert full.storage_ratio < 0.5
