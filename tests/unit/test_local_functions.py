"""local/ runs a function's instances as Lambda does: one invocation per instance at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from local.functions import FunctionRegistry
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
