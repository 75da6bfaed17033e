"""Section 3e/3f: what a cold start is made of (issue 12, target 1: analysis, no change to the handlers).

3e, a ladder: fresh interpreters (CPU time, as section 3; each run paired with a baseline run started
alongside it; median of the ratios) that add the libraries every API handler is built on one step at a time, then
the hot-path handlers as they are and with Powertools' request validation switched off at run time (the
resolver's `enable_validation` forced False before the handler module loads: what a handler would cost
without the validating resolver; nothing in layers/ or functions/ changes). The issue's "floor 1.31 x" was
an earlier floor script (wall time, `import pydantic` only, nothing built): it is run again here, in both
clocks, beside today's floor.

3f: the heartbeat's `-X importtime` (wall time, median of runs): the ten largest imports by self time, and
self time grouped by what it belongs to (Hangar's models, pydantic, Powertools' validation/OpenAPI code,
Powertools' Logger/Metrics, ...).
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cold_start import BREAKDOWN_FUNCTION, HandlerModule, _warm_up, handler_modules, run_interpreters
from bench.environment import ROOT

# argv[1]: a comma-separated list of steps, run in order inside the timed region; "handler:<module>" imports
# a handler (and creates hangar's DynamoDB client); "novalidation" forces enable_validation=False first.
LADDER_SCRIPT = """
import importlib, json, sys, time
steps = sys.argv[1].split(",")
preloaded = sorted(sys.modules)
started, wall_started = time.process_time(), time.perf_counter()
for step in steps:
    if step == "boto3":
        import boto3
        boto3.client("dynamodb")
    elif step == "import-pydantic":
        import pydantic
    elif step == "powertools":
        import aws_lambda_powertools
    elif step == "logger-metrics":
        from aws_lambda_powertools import Logger, Metrics
        Logger(), Metrics(namespace="Floor")
    elif step == "import-resolver":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    elif step == "resolver":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        APIGatewayRestResolver()
    elif step == "validating-resolver":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        APIGatewayRestResolver(enable_validation=True)
    elif step == "model":
        from pydantic import BaseModel
        class Body(BaseModel):
            name: str
    elif step == "novalidation":
        from aws_lambda_powertools.event_handler import api_gateway
        original = api_gateway.ApiGatewayResolver.__init__
        def without_validation(self, *args, **kwargs):
            kwargs["enable_validation"] = False
            original(self, *args, **kwargs)
        api_gateway.ApiGatewayResolver.__init__ = without_validation
    elif step.startswith("handler:"):
        importlib.import_module(step.split(":", 1)[1])
        from hangar.store import dynamo
        dynamo.client()
    else:
        raise SystemExit(f"unknown step {step}")
seconds, wall_seconds = time.process_time() - started, time.perf_counter() - wall_started
print(json.dumps({"seconds": seconds, "wall_seconds": wall_seconds, "preloaded": preloaded}))
"""

BASELINE = ("boto3",)
OLD_FLOOR = ("boto3", "import-pydantic", "powertools", "import-resolver")  # the floor the issue quotes (1.31 x)
FLOOR = ("boto3", "powertools", "logger-metrics", "validating-resolver", "model")  # section 3's floor
LADDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the issue's floor: import pydantic, import the resolver (built nothing)", OLD_FLOOR),
    ("boto3 + one pydantic model, no Powertools", ("boto3", "model")),
    ("boto3 + Logger, Metrics, APIGatewayRestResolver() (no validation)",
     ("boto3", "powertools", "logger-metrics", "resolver")),
    ("the same with enable_validation=True", ("boto3", "powertools", "logger-metrics", "validating-resolver")),
    ("the same + one pydantic model (section 3's floor)", FLOOR),
)  # fmt: skip
HOT_PATHS = ("HeartbeatFunction", "PollJobFunction", "UpdateJobStatusFunction")


@dataclass(frozen=True)
class LadderRow:
    label: str
    cpu_seconds: float
    cpu_ratio: float
    wall_seconds: float
    wall_ratio: float


@dataclass(frozen=True)
class ImportCost:
    module: str
    self_seconds: float
    cumulative_seconds: float


@dataclass(frozen=True)
class ColdStartAnatomy:
    repeats: int
    ladder: list[LadderRow]
    top_imports: list[ImportCost]  # the heartbeat's ten largest by self time
    groups: dict[str, float]  # the heartbeat's import self time by what it belongs to
    wall_total_seconds: float  # the heartbeat's whole timed region, wall (importtime run)
    python_version: str


def _command(steps: tuple[str, ...], cwd: Path = ROOT, import_time: bool = False) -> tuple[list[str], Path]:
    argv = [sys.executable, *(["-X", "importtime"] if import_time else []), "-c", LADDER_SCRIPT, ",".join(steps)]
    return argv, cwd


def _handler_rows(modules: dict[str, HandlerModule]) -> list[tuple[str, tuple[str, ...], Any]]:
    rows: list[tuple[str, tuple[str, ...], Any]] = []
    for function_id in HOT_PATHS:
        module = modules[function_id]
        name = function_id.removesuffix("Function")
        rows.append((f"{name} handler as it is", ("handler:" + module.module,), module.code_dir))
        rows.append((f"{name} handler, validation off", ("novalidation", "handler:" + module.module), module.code_dir))
    return rows


def measure_ladder(repeats: int) -> list[LadderRow]:
    modules = {module.function_id: module for module in handler_modules()}
    _warm_up(list(modules.values()))
    targets = [(label, steps, ROOT) for label, steps in LADDER] + _handler_rows(modules)
    for _, steps, cwd in targets:
        run_interpreters([_command(steps, cwd)])  # caches warm
    cpu: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu_ratios: dict[str, list[float]] = defaultdict(list)
    wall_ratios: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for label, steps, cwd in targets:
            (base, _), (run, _) = run_interpreters([_command(BASELINE), _command(steps, cwd)])
            cpu[label].append(run["seconds"])
            wall[label].append(run["wall_seconds"])
            cpu_ratios[label].append(run["seconds"] / base["seconds"])
            wall_ratios[label].append(run["wall_seconds"] / base["wall_seconds"])
    return [
        LadderRow(
            label,
            statistics.median(cpu[label]),
            statistics.median(cpu_ratios[label]),
            statistics.median(wall[label]),
            statistics.median(wall_ratios[label]),
        )
        for label, _, _ in targets
    ]


def _group(module: str) -> str:
    root = module.split(".")[0]
    if module.startswith("hangar.models"):
        return "hangar.models (pydantic models built at import)"
    if root == "hangar":
        return "hangar (other modules)"
    if root in ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"):
        return "pydantic, pydantic_core"
    if module.startswith(
        ("aws_lambda_powertools.event_handler.openapi", "aws_lambda_powertools.event_handler.middlewares")
    ):
        return "Powertools validation and OpenAPI (event_handler.openapi, middlewares)"
    if module.startswith(("aws_lambda_powertools.logging", "aws_lambda_powertools.metrics")):
        return "Powertools Logger and Metrics"
    if root == "aws_lambda_powertools":
        return "Powertools (the rest: event_handler, data classes, shared)"
    if root in ("boto3", "botocore", "urllib3", "s3transfer", "jmespath", "dateutil"):
        return "boto3, botocore, urllib3 (the baseline's)"
    if root in sys.stdlib_module_names:
        return "standard library"
    return f"other ({root})"


def heartbeat_imports(runs: int = 3) -> tuple[list[ImportCost], dict[str, float], float]:
    module = next(item for item in handler_modules() if item.function_id == BREAKDOWN_FUNCTION)
    samples: list[dict[str, tuple[int, int]]] = []
    walls: list[float] = []
    for _ in range(runs):
        report, stderr = run_interpreters([_command(("handler:" + module.module,), module.code_dir, True)])[0]
        preloaded = set(report["preloaded"])
        sample: dict[str, tuple[int, int]] = {}
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_part, cumulative_part, name_part = line[len("import time:") :].split("|", 2)
            name = name_part.strip()
            if name not in preloaded:
                sample[name] = (int(self_part), int(cumulative_part))
        samples.append(sample)
        walls.append(float(report["wall_seconds"]))
    names = set().union(*samples)
    costs = [
        ImportCost(
            name,
            statistics.median(sample.get(name, (0, 0))[0] for sample in samples) / 1e6,
            statistics.median(sample.get(name, (0, 0))[1] for sample in samples) / 1e6,
        )
        for name in names
    ]
    groups: dict[str, float] = defaultdict(float)
    for cost in costs:
        groups[_group(cost.module)] += cost.self_seconds
    top = sorted(costs, key=lambda cost: -cost.self_seconds)[:10]
    return top, dict(sorted(groups.items(), key=lambda item: -item[1])), statistics.median(walls)


def measure_cold_start_anatomy(repeats: int = 3) -> ColdStartAnatomy:
    ladder = measure_ladder(repeats)
    top, groups, wall = heartbeat_imports()
    return ColdStartAnatomy(
        repeats=repeats,
        ladder=ladder,
        top_imports=top,
        groups=groups,
        wall_total_seconds=wall,
        python_version=sys.version.split()[0],
    )
