"""In-process unit tests of the agent's pure pieces: result mapping, back-off policy, logging, config."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

AGENT_DIR = Path(__file__).resolve().parents[3] / "agent"
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))

import hangar_agent  # noqa: E402
from hangar_agent import api, log  # noqa: E402
from hangar_agent.agent import Agent  # noqa: E402
from hangar_agent.config import AgentConfig, load_config, write_config  # noqa: E402
from hangar_agent.job import JobProcess, outcome_from_exit  # noqa: E402


def test_version_is_exposed() -> None:
    assert hangar_agent.__version__ == "0.1.0"


# --------------------------------------------------------------------------- COMMAND contract


def test_outcome_json_object_becomes_result() -> None:
    out = outcome_from_exit(0, b'{"ok": true, "n": 1}\n', b"")
    assert (out.status, out.result, out.error) == ("completed", {"ok": True, "n": 1}, None)


@pytest.mark.parametrize("stdout", [b"[1, 2]", b"plain text", b"", b"\xff\xfe not utf8"])
def test_outcome_non_object_stdout_is_wrapped(stdout: bytes) -> None:
    out = outcome_from_exit(0, stdout, b"")
    assert out.status == "completed"
    assert out.result == {"output": stdout.decode("utf-8", errors="replace")}


def test_outcome_output_keeps_last_16_kib() -> None:
    out = outcome_from_exit(0, b"a" * 20000 + b"END", b"")
    assert out.result is not None
    assert len(out.result["output"]) == 16 * 1024
    assert out.result["output"].endswith("END")


def test_outcome_failure_has_exit_status_and_stderr_tail() -> None:
    out = outcome_from_exit(7, b"ignored", b"x" * 5000 + b"\nfinal error line\n")
    assert out.status == "failed" and out.result is None
    assert out.error is not None
    assert out.error.startswith("exit status 7: ")
    assert out.error.endswith("final error line")
    assert len(out.error) < 2 * 1024 + 40
    assert outcome_from_exit(1, b"", b"").error == "exit status 1"
    assert outcome_from_exit(-9, b"", b"").error == "killed by signal SIGKILL"


def test_job_process_gets_stdin_json_and_job_id_env() -> None:
    job = {"_id": "job_1", "payload": {"k": [1, 2]}}
    proc = JobProcess(
        f"{sys.executable} -c 'import json,os,sys; j=json.load(sys.stdin); "
        f'print(json.dumps({{"id": os.environ["HANGAR_JOB_ID"], "p": j["payload"]}}))\'',
        job,
        "job_1",
    )
    out = proc.run(timeout=10)
    assert out.status == "completed"
    assert out.result == {"id": "job_1", "p": {"k": [1, 2]}}


def test_job_process_kill_request_before_start_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proc = JobProcess(f"touch {marker}", {}, "job_2")
    assert proc.request_kill("cancelled")
    assert not proc.request_kill("timeout")  # first reason wins
    out = proc.run(timeout=5)
    assert (out.status, out.error) == ("failed", "cancelled")
    assert not marker.exists()


# --------------------------------------------------------------------------- back-off policy


def test_retry_after_parsing() -> None:
    assert api.parse_retry_after("3") == 3.0
    assert api.parse_retry_after(None) == 5.0
    assert api.parse_retry_after("garbage") == 5.0
    assert api.parse_retry_after("0") == 1.0
    assert api.parse_retry_after("999999") == 600.0
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= api.parse_retry_after(future) <= 31


def test_backoff_doubles_to_a_60s_cap_with_jitter() -> None:
    no_jitter = [api.backoff_delay(i, rng=lambda a, b: 1.0) for i in range(9)]
    assert no_jitter == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert api.backoff_delay(40, rng=lambda a, b: b) == 60
    for _ in range(100):
        assert 0.8 <= api.backoff_delay(0) <= 1.2
        assert 9 <= api.jittered(10) <= 11


def _resp(status: int, body: Any = None, headers: dict[str, str] | None = None) -> api.Response:
    msg = Message()
    for key, value in (headers or {}).items():
        msg[key] = value
    if body is None and 200 <= status < 300:
        body = {"success": True, "data": {}}
    return api.Response(status=status, headers=msg, body=body, text=json.dumps(body))


class ScriptedTransport:
    def __init__(self, responses: Sequence[api.Response | Exception]) -> None:
        self.responses = list(responses)
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def __call__(self, url: str, body: dict[str, Any], *, token: str | None, timeout: float) -> api.Response:
        self.calls.append((url, body, token))
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def captured_log() -> io.StringIO:
    stream = io.StringIO()
    log.setup_logging(logging.INFO)
    handler = log.logger.handlers[-1]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return stream


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "backoff_delay", lambda attempt: 0.01)
    monkeypatch.setattr(api, "parse_retry_after", lambda value: 0.01)


@pytest.mark.usefixtures("fast_backoff")
def test_client_rate_limit_episode_logs_once(captured_log: io.StringIO) -> None:
    transport = ScriptedTransport([_resp(429, headers={"Retry-After": "1"})] * 5 + [_resp(200)])
    client = api.ApiClient("http://hangar.test/", "hgr_secret", transport=transport)
    resp = client.call("/api/runners/jobs", {}, kind="poll", abort=threading.Event())
    assert resp is not None and resp.status == 200
    assert len(transport.calls) == 6
    assert transport.calls[0][0] == "http://hangar.test/api/runners/jobs"
    assert transport.calls[0][2] == "hgr_secret"
    lines = captured_log.getvalue().splitlines()
    assert [line.split("event=")[1].split()[0] for line in lines] == ["rate_limited", "rate_limit_ended"]


@pytest.mark.usefixtures("fast_backoff")
def test_client_server_errors_log_once_then_recover(captured_log: io.StringIO) -> None:
    failures: list[api.Response | Exception] = [_resp(503), api.NetworkError("refused"), _resp(502)]
    transport = ScriptedTransport([*failures, _resp(200, body="not an object"), _resp(200)])
    client = api.ApiClient("http://hangar.test", "hgr_secret", transport=transport)
    resp = client.call("/x", {}, kind="heartbeat", abort=threading.Event())
    assert resp is not None and resp.ok
    events = [line.split("event=")[1].split()[0] for line in captured_log.getvalue().splitlines()]
    assert events == ["api_unavailable", "api_recovered"]


def test_client_401_raises_and_4xx_is_returned() -> None:
    client = api.ApiClient("http://h", "t", transport=ScriptedTransport([_resp(401), _resp(409, {"error": {}})]))
    with pytest.raises(api.TokenRejectedError):
        client.call("/x", {}, kind="status", abort=threading.Event())
    resp = client.call("/x", {}, kind="status", abort=threading.Event())
    assert resp is not None and resp.status == 409


def test_client_gives_up_at_deadline_or_abort() -> None:
    client = api.ApiClient("http://h", "t", transport=ScriptedTransport([_resp(500)] * 3))
    assert client.call("/x", {}, kind="status", abort=threading.Event(), deadline=0.0) is None
    aborted = threading.Event()
    aborted.set()
    assert client.call("/x", {}, kind="status", abort=aborted) is None


def test_response_error_fields() -> None:
    resp = _resp(403, {"error": {"code": "license_inactive", "message": "License is not active"}})
    assert (resp.error_code(), resp.error_message()) == ("license_inactive", "License is not active")
    bare = api.Response(status=502, headers=Message(), body=None, text="<html>Bad gateway</html>")
    assert bare.error_code() == "http_502"
    assert "Bad gateway" in bare.error_message()


# --------------------------------------------------------------------------- logging


def test_log_lines_are_single_line_utc_key_value_and_scrub_secrets(captured_log: io.StringIO) -> None:
    log.register_secret("hgr_topsecretvalue", "hgr_tops[redacted]")
    log.info("job_started", job="job_123", note="two words", empty="", skipped=None, flag=True)
    log.warning("weird", detail="line1\nline2 hgr_topsecretvalue")
    first, second = captured_log.getvalue().splitlines()
    stamp, rest = first.split(" ", 1)
    datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    assert rest == 'level=info event=job_started job=job_123 note="two words" empty="" flag=true'
    assert second.split(" ", 1)[1] == 'level=warning event=weird detail="line1\\nline2 hgr_tops[redacted]"'


# --------------------------------------------------------------------------- config


def an_agent_config() -> AgentConfig:
    return AgentConfig(
        api_url="https://hangar.example",
        runner_id="r1",
        token="hgr_abc",
        token_prefix="hgr_a",
        name=None,
        labels=["a"],
        configured_concurrency=3,
    )


def test_config_written_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    config = an_agent_config()
    path = tmp_path / "new" / "agent.json"
    old_umask = os.umask(0)
    try:
        write_config(path, config)
        path.chmod(0o644)
        write_config(path, config)  # overwrite an existing, too-open file
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_config(path) == config
    assert "hgr_abc" not in repr(config)


# --------------------------------------------------------------------------- signals


def test_a_signal_taken_while_the_main_thread_holds_a_lock_still_stops_the_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python runs a signal handler in the main thread between two bytecodes, also while that thread holds a
    # plain lock, such as the one inside the stop Event the shutdown sets: a handler that takes it hangs.
    handlers: dict[int, Any] = {}
    monkeypatch.setattr(signal, "signal", lambda signum, handler: handlers.__setitem__(signum, handler))
    config = an_agent_config()
    agent = Agent(config, "true")
    agent._install_signal_handlers()

    def take_the_signal_holding_the_lock() -> None:
        with agent.stop_polling._cond:
            handlers[signal.SIGTERM](signal.SIGTERM, None)

    signalled = threading.Thread(target=take_the_signal_holding_the_lock, daemon=True)
    signalled.start()
    signalled.join(5)
    assert not signalled.is_alive(), "the signal handler hung on a lock its own thread held"
    assert agent.stop_polling.wait(5)
