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
