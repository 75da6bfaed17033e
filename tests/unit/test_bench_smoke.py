"""The design's DynamoDB budget per runner-route request as a regression gate in `make test`: section 1 of
`make bench` (the real handlers in-process against moto, every DynamoDB call counted), a few seconds."""

from __future__ import annotations

import time
from pathlib import Path

from bench.request_calls import TARGET_CALLS, measure_dynamodb_calls_per_request


def test_runner_routes_stay_within_their_dynamodb_call_targets() -> None:
    measured = {request.name: request for request in measure_dynamodb_calls_per_request(repeats=1)}

    assert set(TARGET_CALLS) <= set(measured)
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


def test_pickup_job_command_records_its_start_and_job_id_as_the_agent_runs_it(tmp_path: Path) -> None:
    """`make bench` section 9 reads what the job command writes: run it through the agent's own JobProcess."""
    from hangar_agent.job import JobProcess

    from bench.job_pickup import JOB_COMMAND, percentile

    before = time.time()
    outcome = JobProcess(JOB_COMMAND.format(dir=tmp_path), {"_id": "job-1"}, "job-1").run(timeout=30)
    after = time.time()

    assert outcome.status == "completed", outcome
    moment, job_id = (tmp_path / "job-1.start").read_text().split()
    assert job_id == "job-1"
    assert before <= float(moment) <= after
    assert not list(tmp_path.glob("*.tmp"))
    assert percentile([float(n) for n in range(1, 21)], 0.95) == 19.0
    assert percentile([1.0], 0.95) == 1.0


def test_cost_model_prices_are_dated_and_sourced_and_the_access_log_line_is_the_templates() -> None:
    """`make bench` section 5: one price table, each price from an AWS pricing page; the access log line it
    bills is what template.yaml's Format renders (JSON, every variable filled)."""
    import json

    from bench import cost_model, prices
    from bench.environment import ROOT
    from local.template import load_template

    assert prices.PRICES and all(price.source.startswith("https://aws.amazon.com/") for price in prices.PRICES)
    assert len({price.item for price in prices.PRICES}) == len(prices.PRICES)
    line = cost_model.access_log_line(load_template(ROOT / "template.yaml"))
    fields = json.loads(line)
    assert "$context" not in line
    assert fields["resourcePath"] == "/api/runners/jobs" and fields["status"] == "200"
