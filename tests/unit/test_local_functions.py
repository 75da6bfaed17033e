"""local/ runs a function's instances as Lambda does: one invocation per instance at a time."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from local.functions import FunctionRegistry, LocalLambdaContext, make_logger_keys_per_thread
from local.template import FunctionSpec

# A handler that keeps the current request at module level, as Powertools' resolver does
# (`app.current_event`), and reads it back after another invocation had the chance to run.
HANDLER = """
import threading

current = None
started = threading.Barrier(2, timeout=2)


def handler(event, context):
    global current
    current = event
    if event.get("together"):
        try:
            started.wait()  # both invocations are inside a handler at once
        except threading.BrokenBarrierError:
            pass  # one instance each: the other invocation never reaches this module's barrier
    return current
"""


def _registry(tmp_path: Path) -> FunctionRegistry:
    (tmp_path / "echo.py").write_text(HANDLER)
    return FunctionRegistry({"EchoFunction": FunctionSpec("EchoFunction", tmp_path, "echo.handler", timeout=10)})


def test_concurrent_invocations_never_share_an_instance(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda n: registry.invoke("EchoFunction", {"n": n, "together": True}), [1, 2]))
    assert answers == [{"n": 1, "together": True}, {"n": 2, "together": True}]
    assert registry.instances("EchoFunction") == 2


def test_an_idle_instance_is_reused(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    for n in range(3):
        assert registry.invoke("EchoFunction", {"n": n}) == {"n": n}
    assert registry.instances("EchoFunction") == 1


def test_concurrent_invocations_log_their_own_correlation_ids() -> None:
    """Powertools keeps the logger's keys in its one formatter; in local/ invocations share the process,
    so each thread must have its own or one request's lines carry another's correlation id."""
    stream = io.StringIO()
    logger = Logger(service=f"test-{uuid.uuid4().hex}", level="INFO", logger_handler=logging.StreamHandler(stream))
    make_logger_keys_per_thread(logger)
    both_keyed = threading.Barrier(2, timeout=5)

    @logger.inject_lambda_context(correlation_id_path="requestId", clear_state=True)
    def handler(event: dict[str, str], context: Any) -> None:
        both_keyed.wait()  # each invocation has set its keys before either logs
        logger.info("working", request=event["requestId"])

    spec = FunctionSpec("LogFunction", Path("."), "log.handler", timeout=10)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: handler({"requestId": f"req-{n}"}, LocalLambdaContext(spec, f"aws-{n}")), [1, 2]))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted(line["request"] for line in lines) == ["req-1", "req-2"]
    for line in lines:
        assert line["correlation_id"] == line["request"]
        assert line["function_request_id"] == "aws-" + line["request"].removeprefix("req-")
