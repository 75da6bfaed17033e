"""The template's functions, imported from their files on first use and invoked like Lambda would.

Handler modules are imported by file path under a unique module name (`hangar_fn_<LogicalId>_<n>`),
since different groups reuse file names (functions/runners/list.py, functions/jobs/list.py, ...). While a
module is imported its CodeUri directory is first on sys.path, as it is in Lambda.

Like Lambda, a function instance (its imported module: the handler and whatever it keeps at module
level, e.g. the Powertools resolver holding the current request) serves ONE invocation at a time.
Concurrent invocations of the same function get further instances, imported on demand (a cold start),
and an instance goes back to the function's idle pool when its invocation ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import wraps
from types import ModuleType
from typing import TYPE_CHECKING, Any

from local.template import ACCOUNT_ID, REGION, FunctionSpec

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

Handler = Callable[[Any, Any], Any]


class LocalLambdaContext:
    """What Lambda passes as `context` (the attributes Powertools and handlers read)."""

    def __init__(self, spec: FunctionSpec, request_id: str | None = None) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.logical_id}"
        self.memory_limit_in_mb = spec.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionNotFound(KeyError):
    """No function of that logical id in the template (or it has no local code)."""


class FunctionRegistry:
    """The template's functions by logical id, each with a pool of idle instances (imported modules)."""

    def __init__(self, specs: Mapping[str, FunctionSpec]) -> None:
        self.specs = dict(specs)
        self._idle: dict[str, list[Handler]] = {logical_id: [] for logical_id in self.specs}
        self._instances: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._lock = threading.Lock()
        self._serial = {
            logical_id: threading.Lock()
            for logical_id, spec in self.specs.items()
            if str(spec.properties.get("ReservedConcurrentExecutions")) == "1"
        }

    def __contains__(self, logical_id: object) -> bool:
        return logical_id in self.specs

    def instances(self, logical_id: str) -> int:
        """How many instances of the function have been started (its cold starts)."""
        return self._instances[logical_id]

    def _acquire(self, logical_id: str) -> Handler:
        """An idle instance's handler, or a new instance's (import errors propagate)."""
        spec = self.specs.get(logical_id)
        if spec is None:
            raise FunctionNotFound(logical_id)
        with self._lock:
            idle = self._idle[logical_id]
            if idle:
                return idle.pop()
            self._instances[logical_id] += 1
            number = self._instances[logical_id]
        try:
            module = _import_file(f"hangar_fn_{logical_id}_{number}", spec)
            handler: Handler | None = getattr(module, spec.attribute, None)
            if not callable(handler):
                raise AttributeError(f"{spec.module_file} has no callable {spec.attribute!r}")
        except BaseException:
            with self._lock:
                self._instances[logical_id] -= 1
            raise
        return handler

    def _release(self, logical_id: str, handler: Handler) -> None:
        with self._lock:
            self._idle[logical_id].append(handler)

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> Any:
        """Call the function with `event` and a Lambda context on an instance no other invocation is
        using; exceptions propagate. A function with `ReservedConcurrentExecutions: 1` (the sweeper)
        runs one invocation at a time."""
        lock = self._serial.get(logical_id)
        with lock if lock is not None else contextlib.nullcontext():
            handler = self._acquire(logical_id)
            try:
                return handler(event, LocalLambdaContext(self.specs[logical_id], request_id))
            finally:
                self._release(logical_id, handler)


_import_lock = threading.Lock()


def _import_file(module_name: str, spec: FunctionSpec) -> ModuleType:
    path = spec.module_file
    if not path.is_file():
        raise FileNotFoundError(f"{spec.logical_id}: handler file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    with _import_lock:
        sys.modules[module_name] = module
        code_dir = str(spec.code_dir)
        sys.path.insert(0, code_dir)
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(code_dir)
    return module


def make_metrics_thread_safe(quiet: bool) -> None:
    """Serialise the shared Powertools metric set of `hangar.core.observability.metrics`; `quiet`: no
    cold-start metric either (Powertools writes it with `single_metric`, which ignores
    POWERTOOLS_METRICS_DISABLED).

    In Lambda each function has its own process; here all functions share one, and Powertools keeps
    one metric set per process. Without a lock, one invocation's flush can clear or iterate another's
    metrics mid-way and fail the request.
    """
    from hangar.core.observability import metrics

    provider = metrics.provider
    lock = threading.RLock()
    for name in (
        "add_metric",
        "add_dimension",
        "add_metadata",
        "flush_metrics",
        "clear_metrics",
        "serialize_metric_set",
    ):
        original = getattr(provider, name)

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(provider, name, wraps(original)(locked))
    if quiet:
        provider.add_cold_start_metric = lambda context: None  # type: ignore[method-assign]


class _KeysPerThread:
    """Mixed into a Powertools formatter: its current keys (`log_format`) are kept per thread."""

    _base_keys: dict[str, Any]
    _threads: threading.local

    @property
    def log_format(self) -> dict[str, Any]:
        keys: dict[str, Any] | None = getattr(self._threads, "keys", None)
        if keys is None:
            keys = self._threads.keys = dict(self._base_keys)
        return keys

    @log_format.setter
    def log_format(self, keys: dict[str, Any]) -> None:
        self._threads.keys = keys


def make_logger_keys_per_thread(logger: Logger | None = None) -> None:
    """Give each thread its own keys in the shared Powertools logger (`hangar.core.observability.logger`
    unless another is named); call it after its formatter is in place.

    In Lambda each invocation has the process to itself; here concurrent invocations share the logger's
    formatter, whose keys (correlation id, function name, request id) `inject_lambda_context(clear_state=True)`
    replaces on every invocation, so one request's log lines carried another's correlation id.
    """
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
    from hangar.core.observability import logger as hangar_logger

    formatter = (logger or hangar_logger).registered_formatter
    if not isinstance(formatter, LambdaPowertoolsFormatter) or isinstance(formatter, _KeysPerThread):
        return
    base_keys = formatter.__dict__.pop("log_format")
    formatter.__class__ = type(f"PerThread{type(formatter).__name__}", (_KeysPerThread, type(formatter)), {})
    formatter._base_keys = base_keys  # type: ignore[attr-defined]
    formatter._threads = threading.local()  # type: ignore[attr-defined]
