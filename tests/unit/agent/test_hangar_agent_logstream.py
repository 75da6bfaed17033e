"""The job log stream in-process, over real HTTP against the fake Hangar's logs route: batching into chunks
of at most 64 KiB, order, retries with the same seq, resuming from the server's nextSeq, the log cap,
cancelRequested, and a bounded spool that never blocks the job when the server is slow."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from fake_hangar import FakeHangar
from hangar_agent.api import ApiClient
from hangar_agent.logstream import CHUNK_BYTES, LogStream, RequestPacer, utf8_prefix

ROUTE_BODY_LIMIT = 72 * 1024
MARKER_RE = re.compile(r"\[hangar-agent\] (\d+) bytes \((\d+) lines\) of this job's output were dropped here")


class Events:
    def __init__(self) -> None:
        self.cancels = 0
        self.token_rejected = threading.Event()

    def cancel(self) -> None:
        self.cancels += 1


def stream_for(server: FakeHangar, job_id: str, events: Events, token: str | None = None, **kwargs: Any) -> LogStream:
    client = ApiClient(server.url, token or server.runner_token, timeout=10)
    stream = LogStream(
        client,
        job_id,
        pacer=RequestPacer(0),
        on_cancel=events.cancel,
        on_token_rejected=events.token_rejected.set,
        **kwargs,
    )
    stream.start()
    return stream


def feed_in_pieces(stream: LogStream, data: bytes, size: int) -> None:
    for start in range(0, len(data), size):
        stream.feed(data[start : start + size])


def assert_contiguous(server: FakeHangar, job_id: str) -> list[dict[str, Any]]:
    sent = server.log_requests(job_id)
    assert [body["seq"] for body in sent] == list(range(len(sent))), [body["seq"] for body in sent]
    return sent


def test_utf8_prefix_never_splits_a_character() -> None:
    text = "aé€😀"  # 1, 2, 3 and 4 bytes
    assert [utf8_prefix(text, n) for n in range(11)] == [
        "", "a", "a", "aé", "aé", "aé", "aé€", "aé€", "aé€", "aé€", "aé€😀"
    ]  # fmt: skip


def test_text_split_anywhere_arrives_whole_in_ordered_chunks_of_at_most_64_kib(server: FakeHangar) -> None:
    job_id = server.running_job()
    events = Events()
    stream = stream_for(server, job_id, events)
    text = "".join(f"line {i}: é€😀 ü\n" for i in range(12000))  # ~260 KiB, multi-byte characters
    data = text.encode()
    feed_in_pieces(stream, data, 4093)  # pieces end inside characters
    assert stream.finish(30)
    sent = assert_contiguous(server, job_id)
    assert server.jobs[job_id].log_text == text
    assert all(len(body["data"].encode()) <= CHUNK_BYTES for body in sent)
    assert len(sent) >= len(data) // CHUNK_BYTES + 1
    assert stream.sent_bytes == len(data) and stream.dropped_bytes == 0


def test_invalid_utf8_is_replaced_not_lost(server: FakeHangar) -> None:
    job_id = server.running_job()
    stream = stream_for(server, job_id, Events())
    stream.feed(b"ok \xff\xfe bytes\n")
    stream.feed(b"cut \xe2\x82")  # an incomplete character at the end of the output
    assert stream.finish(10)
    assert server.jobs[job_id].log_text == "ok \ufffd\ufffd bytes\ncut \ufffd"


def test_control_characters_never_push_a_body_past_the_route_limit(server: FakeHangar) -> None:
    job_id = server.running_job()
    stream = stream_for(server, job_id, Events())
    text = "\x1b[2K\r" * 40000  # terminal escapes: JSON writes \u001b, six bytes for one
    stream.feed(text.encode())
    assert stream.finish(30)
    sent = assert_contiguous(server, job_id)
    assert server.jobs[job_id].log_text == text
    for body in sent:
        assert len(json.dumps(body, ensure_ascii=False).encode()) <= ROUTE_BODY_LIMIT


def test_a_lost_answer_is_retried_with_the_same_seq_and_stored_once(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.log_drop_response_seqs = {1}
    stream = stream_for(server, job_id, Events(), flush_interval=0.05)
    stream.feed(b"first\n")
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 1)
    stream.feed(b"second\n")
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 2)
    stream.feed(b"third\n")
    assert stream.finish(30)
    sent = server.log_requests(job_id)
    assert [body["seq"] for body in sent] == [0, 1, 1, 2]
    assert sent[1] == sent[2]  # the retry is the same chunk
    assert server.jobs[job_id].log_chunks == ["first\n", "second\n", "third\n"]


def test_server_errors_are_retried_with_the_same_seq(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.log_503 = 2
    stream = stream_for(server, job_id, Events())
    stream.feed(b"hello\n")
    assert stream.finish(30)
    assert [body["seq"] for body in server.log_requests(job_id)] == [0, 0, 0]
    assert server.jobs[job_id].log_chunks == ["hello\n"]


def test_a_conflict_resumes_from_the_servers_next_seq(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.jobs[job_id].log_chunks = ["another sender\n"] * 3
    stream = stream_for(server, job_id, Events(), flush_interval=0.05)
    stream.feed(b"mine\n")
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 4)
    stream.feed(b"mine too\n")
    assert stream.finish(10)
    assert [body["seq"] for body in server.log_requests(job_id)] == [0, 3, 4]
    assert server.jobs[job_id].log_chunks[3:] == ["mine\n", "mine too\n"]


def test_a_finished_job_stops_the_stream_after_one_refusal(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.jobs[job_id].status = "completed"
    stream = stream_for(server, job_id, Events(), flush_interval=0.05)
    stream.feed(b"too late\n")
    assert server.wait_for(lambda: len(server.log_requests(job_id)) == 1)
    stream.feed(b"and more\n")
    assert stream.finish(10)
    assert len(server.log_requests(job_id)) == 1


def test_past_the_log_cap_nothing_more_is_sent(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.log_cap = 100
    stream = stream_for(server, job_id, Events(), flush_interval=0.05)
    stream.feed(b"a" * 60 + b"\n")
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 1)
    stream.feed(b"b" * 60 + b"\n")  # over the cap: 413 log_limit_reached
    assert server.wait_for(lambda: server.jobs[job_id].truncated)
    for _ in range(20):
        stream.feed(b"c" * 1000 + b"\n")
    assert stream.finish(10)
    assert len(server.log_requests(job_id)) == 2
    assert server.jobs[job_id].log_text == "a" * 60 + "\n"


def test_cancel_requested_in_an_answer_cancels_the_job_once(server: FakeHangar) -> None:
    job_id = server.running_job()
    events = Events()
    stream = stream_for(server, job_id, events, flush_interval=0.05)
    stream.feed(b"working\n")
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 1)
    assert events.cancels == 0
    server.cancel(job_id)
    stream.feed(b"still working\n")  # a cancelled job takes chunks until its runner reports it
    assert server.wait_for(lambda: len(server.jobs[job_id].log_chunks) == 2)
    stream.feed(b"stopping\n")
    assert stream.finish(10)
    assert events.cancels == 1 and stream.cancel_requested
    assert server.jobs[job_id].log_text == "working\nstill working\nstopping\n"


def test_a_rejected_token_is_reported(server: FakeHangar) -> None:
    job_id = server.running_job()
    events = Events()
    stream = stream_for(server, job_id, events, token="hgr_" + "0" * 40)
    stream.feed(b"x\n")
    assert stream.finish(10)
    assert events.token_rejected.is_set()


def test_a_slow_server_never_blocks_the_feeder_and_drops_are_written_into_the_log(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.log_gate = threading.Event()  # the server takes no log request until the gate opens
    stream = stream_for(server, job_id, Events(), spool_bytes=CHUNK_BYTES)
    lines = [f"{i:07d} {'x' * 90}\n" for i in range(20000)]  # ~2 MiB, far more than the spool
    fed = threading.Event()

    def feed_all() -> None:
        for line in lines:
            stream.feed(line.encode())
        fed.set()

    threading.Thread(target=feed_all, daemon=True).start()
    # Every feed returns while the server is still not answering at all.
    assert fed.wait(30)
    assert server.log_requests(job_id) == []
    server.log_gate.set()
    stream.feed(b"after the gap\n")
    assert stream.finish(30)

    text = server.jobs[job_id].log_text
    markers = MARKER_RE.findall(text)
    assert markers, text[-500:]
    kept = [line for line in text.splitlines() if line[:7].isdigit()]
    numbers = [int(line[:7]) for line in kept]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # in order, none twice
    dropped_bytes = sum(int(b) for b, _ in markers)
    dropped_lines = sum(int(n) for _, n in markers)
    assert dropped_lines == len(lines) - len(kept)
    assert dropped_bytes == sum(len(line) for line in lines) - sum(len(line) + 1 for line in kept)
    assert stream.dropped_bytes == dropped_bytes
    assert text.endswith("after the gap\n")


def test_small_output_is_batched_not_sent_line_by_line(server: FakeHangar) -> None:
    job_id = server.running_job()
    server.log_gate = threading.Event()
    stream = stream_for(server, job_id, Events(), flush_interval=0.2)
    stream.feed(b"first\n")  # sent at once, then held up by the slow server
    for i in range(200):
        stream.feed(f"line {i}\n".encode())
    server.log_gate.set()
    assert stream.finish(10)
    sent = assert_contiguous(server, job_id)
    assert len(sent) <= 3, [body["data"][:20] for body in sent]
    assert server.jobs[job_id].log_text == "first\n" + "".join(f"line {i}\n" for i in range(200))
