"""Job logs in-process against moto: appending (order, idempotency, races, limits, who may), reading
(pages, cursors, text, completeness), the job views' log fields, and retention by the clock."""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any

import boto3
import pytest
from builders import heartbeat, live_runner, new_job, running_job
from hangar.core import clock
from hangar.jobs import logs as job_logs
from hangar.store import jobs as job_store
from job_outputs_helpers import append, output_items, read_logs, settings, whole_log
from jobs_helpers import cancel, get_job, poll, report, sweep
from support import AwsStack, invoke, runner_event, unique_org, user_event

DAY = 86400


def conflict(body: Any) -> tuple[str, int]:
    assert body["success"] is False
    return body["error"]["code"], body["error"]["nextSeq"]


# --- appending ---------------------------------------------------------------------------------------


def test_chunks_append_in_order_and_read_back_as_written(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    lines = ["Cloning org/infra@main\n", "Scanning 42 files…\n", "ünïcödé ✓ 🚀\n"]
    for seq, data in enumerate(lines):
        status, body = append(org, runner_id, job_id, seq, data)
        assert status == 200, body
        assert body == {"success": True, "data": {"nextSeq": seq + 1, "cancelRequested": False}}

    status, page, _ = read_logs(org, job_id)
    assert status == 200, page
    assert set(page) == {"jobId", "chunks", "nextCursor", "complete", "truncated"}
    assert [chunk["seq"] for chunk in page["chunks"]] == [0, 1, 2]
    assert [chunk["data"] for chunk in page["chunks"]] == lines
    assert all(set(chunk) == {"seq", "data", "at"} for chunk in page["chunks"])
    assert page["complete"] is False and page["truncated"] is False  # the job still runs
    assert page["nextCursor"]

    job = get_job(org, job_id)
    assert job["logBytes"] == sum(len(line.encode()) for line in lines)
    assert job["truncated"] is False


def test_a_follower_gets_what_follows_its_cursor_and_complete_once_the_job_is_done(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "one\n")[0] == 200
    _, first, _ = read_logs(org, job_id)
    _, empty, _ = read_logs(org, job_id, cursor=first["nextCursor"])
    assert empty["chunks"] == [] and empty["complete"] is False
    assert empty["nextCursor"] == first["nextCursor"]  # nothing new: the same place to continue from

    assert append(org, runner_id, job_id, 1, "two\n")[0] == 200
    assert report(org, runner_id, job_id, "running")[0] == 200
    assert append(org, runner_id, job_id, 2, "three\n")[0] == 200
    assert report(org, runner_id, job_id, "completed", result={"ok": True})[0] == 200

    _, rest, _ = read_logs(org, job_id, cursor=first["nextCursor"])
    assert [chunk["data"] for chunk in rest["chunks"]] == ["two\n", "three\n"]
    assert rest["complete"] is True and rest["nextCursor"] is None
    assert whole_log(org, job_id) == "one\ntwo\nthree\n"


def test_pages_follow_limit_and_the_size_budget(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    org, runner_id, job_id = running_job()
    for seq in range(7):
        assert append(org, runner_id, job_id, seq, f"{seq}" * 1000)[0] == 200
    assert report(org, runner_id, job_id, "completed")[0] == 200

    _, page, _ = read_logs(org, job_id, limit="3")
    assert [chunk["seq"] for chunk in page["chunks"]] == [0, 1, 2] and page["complete"] is False
    monkeypatch.setattr(job_logs, "PAGE_BUDGET_BYTES", 2500)
    _, page, _ = read_logs(org, job_id, cursor=page["nextCursor"])
    assert [chunk["seq"] for chunk in page["chunks"]] == [3, 4] and page["complete"] is False
    _, page, _ = read_logs(org, job_id, cursor=page["nextCursor"])
    assert [chunk["seq"] for chunk in page["chunks"]] == [5, 6]
    assert page["complete"] is True and page["nextCursor"] is None


def test_a_repeated_chunk_is_a_no_op_and_a_conflicting_one_or_a_gap_is_409(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    for seq, data in enumerate(["a\n", "b\n", "c\n"]):
        assert append(org, runner_id, job_id, seq, data)[0] == 200

    status, body = append(org, runner_id, job_id, 1, "b\n")
    assert status == 200 and body["data"] == {"nextSeq": 3, "cancelRequested": False}

    status, body = append(org, runner_id, job_id, 1, "B\n")
    assert status == 409 and conflict(body) == ("log_seq_conflict", 3)
    status, body = append(org, runner_id, job_id, 5, "f\n")
    assert status == 409 and conflict(body) == ("log_seq_conflict", 3)
    assert "message" in body["error"]

    assert len(output_items(org, job_id, "log#")) == 3
    assert whole_log(org, job_id) == "a\nb\nc\n"
    assert get_job(org, job_id)["logBytes"] == 6


def race(monkeypatch: pytest.MonkeyPatch, org: str, runner_id: str, job_id: str, seq: int, theirs: str) -> list[Any]:
    """The next append reads the job, then another sender's whole append of `seq` runs, then the first
    goes on: both have read the log before either wrote. The other's answer lands in the list."""
    read_job = job_store.get_job
    other: list[Any] = []

    def interleaved(org_id: str, wanted: str) -> Any:
        job = read_job(org_id, wanted)
        if not other:
            other.append(None)  # from here on every read is a plain one
            other[0] = append(org, runner_id, job_id, seq, theirs)
        return job

    monkeypatch.setattr(job_store, "get_job", interleaved)
    return other


def test_two_senders_of_the_same_seq_store_one_chunk(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second's transaction finds the chunk stored, reads again and answers the no-op (same data)
    or the conflict (other data)."""
    org, runner_id, job_id = running_job()
    other = race(monkeypatch, org, runner_id, job_id, 0, "same\n")
    status, body = append(org, runner_id, job_id, 0, "same\n")
    assert other == [(200, {"success": True, "data": {"nextSeq": 1, "cancelRequested": False}})]
    assert status == 200 and body["data"] == {"nextSeq": 1, "cancelRequested": False}

    other = race(monkeypatch, org, runner_id, job_id, 1, "theirs\n")
    status, body = append(org, runner_id, job_id, 1, "mine\n")
    assert other[0][0] == 200
    assert status == 409 and conflict(body) == ("log_seq_conflict", 2)

    assert [item["seq"] for item in output_items(org, job_id, "log#")] == [0, 1]
    assert whole_log(org, job_id) == "same\ntheirs\n"
    assert get_job(org, job_id)["logBytes"] == len("same\ntheirs\n")


# --- limits ------------------------------------------------------------------------------------------


def test_a_65_kib_chunk_is_413_naming_data_and_64_kib_fits(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    status, body = append(org, runner_id, job_id, 0, "x" * (65 * 1024))
    assert status == 413 and body["error"]["field"] == "data", body
    # 64 KiB of UTF-8 bytes, in two-byte characters: the limit is on bytes, not characters.
    status, body = append(org, runner_id, job_id, 0, "é" * (32 * 1024))
    assert status == 200, body
    status, body = append(org, runner_id, job_id, 1, "é" * (32 * 1024) + "x")
    assert status == 413 and body["error"]["field"] == "data"
    assert output_items(org, job_id, "log#")[0]["bytes"] == 64 * 1024


def test_a_body_over_72_kib_is_refused_before_it_is_read(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    status, body = append(org, runner_id, job_id, 0, "\u0001" * (13 * 1024))  # 6 bytes each as JSON
    assert status == 413 and body["error"]["field"] == "body"
    assert output_items(org, job_id) == []


def test_past_the_cap_the_log_is_truncated_and_the_job_still_completes(aws: AwsStack) -> None:
    with settings(job_log_max_bytes="150000"):
        org, runner_id, job_id = running_job()
        chunk = "y" * 60_000
        assert append(org, runner_id, job_id, 0, chunk)[0] == 200
        assert append(org, runner_id, job_id, 1, chunk)[0] == 200
        status, body = append(org, runner_id, job_id, 2, chunk)
        assert status == 413 and body["error"]["code"] == "log_limit_reached", body
        status, body = append(org, runner_id, job_id, 2, "small\n")  # nothing more after the cut
        assert status == 413 and body["error"]["code"] == "log_limit_reached"

        job = get_job(org, job_id)
        assert job["truncated"] is True and job["logBytes"] == 120_000
        assert report(org, runner_id, job_id, "running")[0] == 200
        status, body = report(org, runner_id, job_id, "completed", result={"findings": 0})
        assert status == 200, body
        _, page, _ = read_logs(org, job_id)
        assert page["truncated"] is True and page["complete"] is True
        assert len(page["chunks"]) == 2


# --- who may append ----------------------------------------------------------------------------------


def test_only_the_assigned_runner_may_append(aws: AwsStack) -> None:
    org, _, job_id = running_job()
    other_runner = live_runner(org, name="other")
    status, body = append(org, other_runner, job_id, 0, "not mine\n")
    assert status == 404, body
    intruder_org, intruder_runner, _ = running_job()
    status, body = append(intruder_org, intruder_runner, job_id, 0, "another tenant\n")
    assert status == 404, body
    assert output_items(org, job_id) == []


def test_a_regenerated_token_is_refused(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "a\n")[0] == 200
    event = user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner_id})
    assert invoke("RegenerateRunnerToken", event)[0] == 200
    for seq, data in ((1, "b\n"), (0, "a\n"), (0, "A\n"), (7, "gap\n")):  # write, no-op, conflict, gap
        status, body = append(org, runner_id, job_id, seq, data, token_version=1)
        assert status == 401, (seq, body)
    assert append(org, runner_id, job_id, 1, "b\n", token_version=2)[0] == 200


def test_a_queued_or_finished_job_takes_no_chunks(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "a\n")[0] == 200
    assert report(org, runner_id, job_id, "failed", error="boom")[0] == 200
    status, body = append(org, runner_id, job_id, 1, "late\n")
    assert status == 409 and conflict(body) == ("log_seq_conflict", 1)
    assert "failed" in body["error"]["message"]


def test_a_cancelled_job_takes_chunks_until_its_runner_acknowledges(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "working\n")[0] == 200
    assert cancel(org, job_id)[0] == 200
    status, body = append(org, runner_id, job_id, 1, "stopping\n")
    assert status == 200 and body["data"] == {"nextSeq": 2, "cancelRequested": True}
    _, page, _ = read_logs(org, job_id)
    assert page["complete"] is False  # the runner may still send what the command wrote last

    status, body = report(org, runner_id, job_id, "failed", error="killed")
    assert status == 200 and body["data"]["status"] == "cancelled"  # the runner has now heard it
    status, body = append(org, runner_id, job_id, 2, "too late\n")
    assert status == 409 and conflict(body) == ("log_seq_conflict", 2)
    _, page, _ = read_logs(org, job_id)
    assert page["complete"] is True and [c["data"] for c in page["chunks"]] == ["working\n", "stopping\n"]


def test_a_job_run_again_after_its_runner_was_lost_starts_a_new_run_of_seqs(aws: AwsStack) -> None:
    org, first_runner, job_id = running_job()
    assert append(org, first_runner, job_id, 0, "first try\n")[0] == 200
    clock.advance(600)  # the runner stops heartbeating: the sweeper re-queues its job
    second_runner = live_runner(org, name="second")
    sweep()
    assert get_job(org, job_id)["status"] == "queued"
    status, body = poll(org, second_runner)
    assert status == 200 and body["data"]["job"]["_id"] == job_id
    assert body["data"]["job"]["logBytes"] == len("first try\n")  # the /api view carries it too
    assert append(org, first_runner, job_id, 1, "lost runner\n")[0] == 404
    assert append(org, second_runner, job_id, 0, "second try\n")[0] == 200
    assert append(org, second_runner, job_id, 1, "done\n")[0] == 200
    _, page, _ = read_logs(org, job_id)
    assert [(c["seq"], c["data"]) for c in page["chunks"]] == [(0, "first try\n"), (0, "second try\n"), (1, "done\n")]
    assert get_job(org, job_id)["logBytes"] == len("first try\nsecond try\ndone\n")
    heartbeat(org, second_runner)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seq": -1, "data": "x"}, "seq"),
        ({"seq": "1", "data": "x"}, "seq"),
        ({"seq": 1.5, "data": "x"}, "seq"),
        ({"seq": 0, "data": 5}, "data"),
        ({"seq": 0}, "data"),
        ({"data": "x"}, "seq"),
        ({"seq": 0, "data": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_400_naming_the_field(aws: AwsStack, body: dict[str, Any], field: str) -> None:
    org, runner_id, job_id = running_job()
    event = runner_event("AppendJobLog", org, runner_id, body={"jobId": job_id, **body})
    status, response, _ = invoke("AppendJobLog", event)
    assert status == 400 and response["error"]["field"] == field, response


def test_text_that_is_not_utf8_is_400_naming_data(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    raw = '{"jobId": "' + job_id + '", "seq": 0, "data": "half a pair \\ud800"}'
    status, response, _ = invoke("AppendJobLog", runner_event("AppendJobLog", org, runner_id, body=raw))
    assert status == 400 and response["error"]["field"] == "data", response


# --- reading -----------------------------------------------------------------------------------------


def test_the_log_as_text(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    for seq, data in enumerate(["line 1\n", "line 2\n", "no newline at the end"]):
        assert append(org, runner_id, job_id, seq, data)[0] == 200
    status, text, headers = read_logs(org, job_id, format="text")
    assert status == 200 and text == "line 1\nline 2\nno newline at the end"
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["Hangar-Log-Complete"] == "false" and headers["Hangar-Log-Truncated"] == "false"
    cursor = headers["Hangar-Log-Cursor"]

    for accept in ("text/plain", "text/plain, application/json;q=0.5"):
        status, same, _ = read_logs(org, job_id, headers={"Accept": accept})
        assert status == 200 and same == text
    for accept in ("application/json", "*/*", "text/plain;q=0.5, application/json"):
        status, page, _ = read_logs(org, job_id, headers={"Accept": accept})
        assert status == 200 and isinstance(page, dict), accept
    status, page, _ = read_logs(org, job_id, headers={"Accept": "text/plain"}, format="json")
    assert isinstance(page, dict)

    assert append(org, runner_id, job_id, 3, "\nmore")[0] == 200
    assert report(org, runner_id, job_id, "completed")[0] == 200
    status, rest, headers = read_logs(org, job_id, format="text", cursor=cursor)
    assert rest == "\nmore" and headers["Hangar-Log-Complete"] == "true" and "Hangar-Log-Cursor" not in headers


def test_a_log_too_large_for_one_response_redirects_to_its_download(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, runner_id, job_id = running_job()
    chunks = [f"{seq:04d} " + "z" * 3000 + "\n" for seq in range(5)]
    for seq, data in enumerate(chunks):
        assert append(org, runner_id, job_id, seq, data)[0] == 200
    monkeypatch.setattr(job_logs, "INLINE_TEXT_BYTES", 10_000)
    status, body, headers = read_logs(org, job_id, format="text")
    assert status == 303, body
    location = headers["Location"]
    assert "X-Amz-Signature=" in location and f"/{org}/{job_id}/log.txt" in location
    stored = boto3.client("s3", region_name="us-east-1").get_object(
        Bucket=os.environ["ARTIFACTS_BUCKET"], Key=f"{org}/{job_id}/log.txt"
    )
    assert stored["Body"].read().decode() == "".join(chunks)
    assert stored["ContentType"].startswith("text/plain")
    # From a cursor: as much as one response holds, and where to continue.
    _, first, _ = read_logs(org, job_id, limit="1")
    status, part, headers = read_logs(org, job_id, format="text", cursor=first["nextCursor"])
    assert status == 200 and part == "".join(chunks[1:4]) and headers["Hangar-Log-Complete"] == "false"
    _, tail, _ = read_logs(org, job_id, format="text", cursor=headers["Hangar-Log-Cursor"])
    assert tail == chunks[4]


def test_a_job_that_never_ran_has_an_empty_log_complete_once_terminal(aws: AwsStack) -> None:
    org = unique_org()
    job_id = new_job(org)["id"]
    _, page, _ = read_logs(org, job_id)
    assert page == {"jobId": job_id, "chunks": [], "nextCursor": None, "complete": False, "truncated": False}
    assert cancel(org, job_id)[0] == 200
    _, page, _ = read_logs(org, job_id)
    assert page["complete"] is True


# --- isolation, scopes, bad input on the read route --------------------------------------------------


def test_another_tenants_job_is_404_and_a_runners_read_token_is_403(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "secret output\n")[0] == 200
    status, body, _ = read_logs(unique_org(), job_id)
    assert status == 404 and "secret" not in json.dumps(body)
    status, body, _ = read_logs(unique_org(), job_id, format="text")
    assert status == 404
    status, body, _ = read_logs(org, job_id, scopes="runners:read")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body, _ = read_logs(org, job_id, scopes="jobs:read")
    assert status == 200


def test_a_cursor_of_another_job_or_made_up_is_400(aws: AwsStack) -> None:
    org, _, job_id = running_job()
    _, other_runner, other_job = running_job(org)
    assert append(org, other_runner, other_job, 0, "other\n")[0] == 200
    _, page, _ = read_logs(org, other_job)
    for cursor in (page["nextCursor"], "bm90IGEgY3Vyc29y", "%%%"):
        status, body, _ = read_logs(org, job_id, cursor=cursor)
        assert status == 400 and body["error"]["field"] == "cursor", body
    for query in ({"limit": "0"}, {"limit": "201"}, {"format": "xml"}):
        status, body, _ = read_logs(org, job_id, **query)
        assert status == 400 and body["error"]["field"] == next(iter(query)), body


# --- retention ----------------------------------------------------------------------------------------


def test_after_the_retention_the_log_is_gone_and_the_job_remains(aws: AwsStack) -> None:
    org, runner_id, job_id = running_job()
    assert append(org, runner_id, job_id, 0, "kept for 30 days\n")[0] == 200
    assert report(org, runner_id, job_id, "completed")[0] == 200
    item = output_items(org, job_id, "log#")[0]
    assert item["expiresAtEpoch"] - clock.now() == pytest.approx(30 * DAY, abs=5)  # what TTL deletes by

    clock.advance(30 * DAY - 60)
    assert whole_log(org, job_id) == "kept for 30 days\n"
    clock.advance(120)
    _, page, _ = read_logs(org, job_id)
    assert page["chunks"] == [] and page["complete"] is True and page["truncated"] is False
    status, text, _ = read_logs(org, job_id, format="text")
    assert status == 200 and not text
    job = get_job(org, job_id)
    assert job["status"] == "completed" and job["logBytes"] == 0


# --- secrets ------------------------------------------------------------------------------------------


def test_no_token_in_any_log_line(aws: AwsStack, caplog: pytest.LogCaptureFixture) -> None:
    """Everything the functions and the SDK log at DEBUG, over appends that succeed and fail."""
    from hangar.core.observability import logger

    org, runner_id, job_id = running_job()
    token = "hgr_0123456789ab_" + "S" * 32 + "abcdef"
    stream = io.StringIO()
    powertools_handler: Any = logger.registered_handler
    previous_stream = powertools_handler.setStream(stream)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        for seq, data in ((0, "a\n"), (0, "b\n"), (5, "c\n"), (1, "x" * 70_000)):
            event = runner_event("AppendJobLog", org, runner_id, body={"jobId": job_id, "seq": seq, "data": data})
            event["headers"]["X-Runner-Token"] = token
            event["multiValueHeaders"]["X-Runner-Token"] = [token]
            invoke("AppendJobLog", event)
        event = user_event("GetJobLogs", org, path_params={"jobId": job_id})
        event["headers"]["Authorization"] = f"Bearer {token}"
        event["multiValueHeaders"]["Authorization"] = [f"Bearer {token}"]
        invoke("GetJobLogs", event)
    finally:
        logger.setLevel(previous_level)
        powertools_handler.setStream(previous_stream)
    output = stream.getvalue() + caplog.text
    assert "TransactWriteItems" in output  # the SDK's debug lines are in what was searched
    assert token not in output and "S" * 32 not in output
