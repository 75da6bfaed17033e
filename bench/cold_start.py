"""Section 3: cold start of every function, the size of the layer they all load, and (3d) what the
build's bytecode saves at a cold start.

A cold start is timed in a FRESH interpreter, the way Lambda's init phase runs a function: the current
directory is the function's code directory (Lambda's /var/task), the handler module is imported, and
the DynamoDB client every function uses is created (`hangar.store.dynamo.client()`, which handlers
otherwise create on their first call). The baseline is `import boto3; boto3.client("dynamodb")` in a
fresh interpreter, started at the same time as each function's run so the two see the same machine load;
the ratio is the median of those pairs. Interpreter start-up itself is outside both timings.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.environment import ROOT, bench_environment

TARGET_RATIO = 1.5  # issue 12: every function
HOT_PATH_TARGET_RATIO = 1.4  # the agent's steady traffic and its authorizer
HOT_PATH_FUNCTIONS = frozenset(
    {"HeartbeatFunction", "PollJobFunction", "UpdateJobStatusFunction", "RunnerAuthorizerFunction"}
)
BREAKDOWN_FUNCTION = "HeartbeatFunction"  # the hottest function: its imports, package by package
STANDARD_LIBRARY = "(standard library)"
NOT_IMPORTS = "(not imports: client creation, module code)"

# argv: "baseline", "floor" (what any handler built on the design's libraries imports), or "handler <module>".
# Timed in CPU time of the process (time.process_time): the machine is shared, and wall time would count
# the other processes' turns on its 2 cores; a cold start here is CPU-bound (bytecode in the OS's cache).
# The floor builds one pydantic model and a validating resolver, as the least API handler does: `import
# pydantic` alone loads almost nothing (its attributes load lazily).
COLD_START_SCRIPT = """
import importlib, json, sys, time
preloaded = sorted(sys.modules)
started, wall_started = time.process_time(), time.perf_counter()
if sys.argv[1] == "handler":
    importlib.import_module(sys.argv[2])
    from hangar.store import dynamo
    dynamo.client()
else:
    import boto3
    if sys.argv[1] == "floor":
        from aws_lambda_powertools import Logger, Metrics
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        from pydantic import BaseModel
        class Body(BaseModel):
            name: str
        Logger(), Metrics(namespace="Floor"), APIGatewayRestResolver(enable_validation=True)
    boto3.client("dynamodb")
seconds, wall_seconds = time.process_time() - started, time.perf_counter() - wall_started
print(json.dumps({"seconds": seconds, "wall_seconds": wall_seconds, "preloaded": preloaded}))
"""
BASELINE = "baseline"
FLOOR = "floor"
FLOOR_DESCRIPTION = "boto3 client + a pydantic model, a validating Powertools resolver, Logger, Metrics"

# Imports every handler once, so each timed run finds its bytecode cached (as Lambda ships it).
WARM_UP_SCRIPT = """
import importlib.util, sys
for index, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"bench_warm_up_{index}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
"""


@dataclass(frozen=True)
class HandlerModule:
    function_id: str
    code_dir: Path
    module: str

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.module.replace(".", "/") + ".py")


@dataclass(frozen=True)
class FunctionColdStart:
    function_id: str
    module: str  # e.g. functions/agent/heartbeat.py
    seconds: float  # median
    ratio: float  # median of (this run / the baseline run alongside it): noise that lasts cancels out


@dataclass(frozen=True)
class ImportShare:
    package: str
    baseline_seconds: float
    function_seconds: float


@dataclass(frozen=True)
class ColdStarts:
    baseline_seconds: float  # median
    repeats: int
    floor: FunctionColdStart  # no hangar code: the libraries every API handler imports
    functions: list[FunctionColdStart]
    breakdown_function: str
    breakdown: list[ImportShare]  # -X importtime, median of runs: import self time by top-level package

    def passed(self, cold_start: FunctionColdStart) -> bool:
        return cold_start.ratio <= target_ratio(cold_start.function_id)


def target_ratio(function_id: str) -> float:
    return HOT_PATH_TARGET_RATIO if function_id in HOT_PATH_FUNCTIONS else TARGET_RATIO


@dataclass(frozen=True)
class LayerSize:
    total_bytes: int
    files: int
    source: str
    largest: list[tuple[str, int]]  # top-level entries of python/ by size


def handler_modules() -> list[HandlerModule]:
    """Every function of template.yaml with the module its Handler names."""
    from local.template import functions, load_template

    specs = functions(load_template(ROOT / "template.yaml"), ROOT)
    return [
        HandlerModule(logical_id, spec.code_dir, spec.handler.rpartition(".")[0])
        for logical_id, spec in sorted(specs.items())
    ]


def cold_start_command(target: HandlerModule | str, import_time: bool = False) -> tuple[list[str], Path]:
    """(argv, working directory) of one fresh interpreter for a handler, BASELINE or FLOOR."""
    command = [sys.executable, *(["-X", "importtime"] if import_time else []), "-c", COLD_START_SCRIPT]
    if isinstance(target, HandlerModule):
        return [*command, "handler", target.module], target.code_dir
    return [*command, target], ROOT


def run_interpreters(commands: list[tuple[list[str], Path]]) -> list[tuple[dict[str, Any], str]]:
    """Start every command at once and wait for all: (the JSON report it printed last, its stderr) each.
    A baseline and the run it is paired with start together, so both see the same load on the machine."""
    processes = [
        subprocess.Popen(
            argv, cwd=cwd, env=bench_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for argv, cwd in commands
    ]
    results: list[tuple[dict[str, Any], str]] = []
    failures: list[str] = []
    for process, (argv, _) in zip(processes, commands, strict=True):
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            failures.append(f"{' '.join(argv[-2:])}:\n{stderr[-3000:]}")
            continue
        results.append((json.loads(stdout.strip().splitlines()[-1]), stderr))
    if failures:
        raise RuntimeError("cold start failed: " + "\n".join(failures))
    return results


def _run_cold_start(target: HandlerModule | str, import_time: bool = False) -> tuple[dict[str, Any], str]:
    """One fresh interpreter for a handler, BASELINE or FLOOR: (its report, its stderr)."""
    return run_interpreters([cold_start_command(target, import_time)])[0]


def _warm_up(modules: list[HandlerModule]) -> None:
    subprocess.run(
        [sys.executable, "-c", WARM_UP_SCRIPT, *(str(module.module_file) for module in modules)],
        cwd=ROOT,
        env=bench_environment(),
        capture_output=True,
        check=True,
    )


def import_seconds_by_package(stderr: str, preloaded: set[str]) -> dict[str, float]:
    """`-X importtime` output → self time of the imports (seconds), summed by top-level package."""
    totals: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_part, _, name_part = line[len("import time:") :].split("|", 2)
        name = name_part.strip()
        if name in preloaded:
            continue
        root = name.split(".")[0]
        totals[STANDARD_LIBRARY if root in sys.stdlib_module_names else root] += int(self_part) / 1e6
    return dict(totals)


def import_seconds(target: HandlerModule | str, runs: int = 3) -> dict[str, float]:
    """Median over `runs` fresh interpreters of each package's import self time, plus the rest of the cold
    start (client creation, module code outside imports)."""
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        report, stderr = _run_cold_start(target, import_time=True)
        by_package = import_seconds_by_package(stderr, set(report["preloaded"]))
        # -X importtime reports wall time: the rest is counted in the same unit.
        by_package[NOT_IMPORTS] = max(0.0, float(report["wall_seconds"]) - sum(by_package.values()))
        samples.append(by_package)
    packages = set().union(*samples)
    return {name: statistics.median(sample.get(name, 0.0) for sample in samples) for name in packages}


def _import_breakdown(module: HandlerModule, top: int = 8) -> list[ImportShare]:
    baseline, function = import_seconds(BASELINE), import_seconds(module)
    ranked = sorted(baseline.keys() | function.keys(), key=lambda name: -function.get(name, 0.0))
    rows = [ImportShare(name, baseline.get(name, 0.0), function.get(name, 0.0)) for name in ranked[:top]]
    rest = ranked[top:]
    rows.append(
        ImportShare(
            f"{len(rest)} other packages",
            sum(baseline.get(name, 0.0) for name in rest),
            sum(function.get(name, 0.0) for name in rest),
        )
    )
    return rows


def measure_cold_starts(repeats: int = 3) -> ColdStarts:
    """Every function `repeats` times, each run paired with a baseline run started alongside it; medians."""
    modules = handler_modules()
    _warm_up(modules)
    _run_cold_start(FLOOR)  # the libraries' own caches (bytecode, the OS's) warm too
    targets: list[HandlerModule | str] = [FLOOR, *modules]
    baseline_runs: list[float] = []
    runs: dict[str, list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for target in targets:
            name = target.function_id if isinstance(target, HandlerModule) else target
            (base, _), (run, _) = run_interpreters([cold_start_command(BASELINE), cold_start_command(target)])
            baseline, seconds = float(base["seconds"]), float(run["seconds"])
            baseline_runs.append(baseline)
            runs[name].append(seconds)
            ratios[name].append(seconds / baseline)

    def cold_start(name: str, module: str) -> FunctionColdStart:
        return FunctionColdStart(name, module, statistics.median(runs[name]), statistics.median(ratios[name]))

    by_id = {module.function_id: module for module in modules}
    return ColdStarts(
        baseline_seconds=statistics.median(baseline_runs),
        repeats=repeats,
        floor=cold_start(FLOOR, FLOOR_DESCRIPTION),
        functions=[cold_start(module.function_id, str(module.module_file.relative_to(ROOT))) for module in modules],
        breakdown_function=BREAKDOWN_FUNCTION,
        breakdown=_import_breakdown(by_id[BREAKDOWN_FUNCTION]),
    )


def _tree_size(root: Path, source: str) -> LayerSize:
    total = files = 0
    sizes: dict[str, int] = defaultdict(int)
    python_dir = root / "python" if (root / "python").is_dir() else root
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            files += 1
            relative = path.relative_to(python_dir).parts if path.is_relative_to(python_dir) else path.parts
            sizes[relative[0]] += size
    largest = sorted(sizes.items(), key=lambda entry: -entry[1])[:6]
    return LayerSize(total_bytes=total, files=files, source=source, largest=largest)


SAM_BUILD_DIR = ROOT / ".aws-sam" / "build"
# template.yaml's layers and their folders under layers/: every function loads the Hangar layer, only the
# user authorizer the JWT layer (PyJWT and cryptography).
LAYERS = {"HangarLayer": "hangar", "JwtLayer": "jwt"}
HANGAR_LAYER_TARGET_BYTES = 25_000_000  # issue 12: unzipped, as make build leaves it (bytecode included)


def measure_layer_size(logical_id: str = "HangarLayer", build_dir: Path = SAM_BUILD_DIR) -> LayerSize:
    """A layer unzipped: `make build`'s output if there is one, else a pip install of its requirements."""
    built = build_dir / logical_id
    if built.is_dir():
        when = datetime.fromtimestamp(built.stat().st_mtime, tz=UTC)
        return _tree_size(
            built, f"sam build output, .aws-sam/build/{logical_id} (arm64 wheels), built {when:%Y-%m-%d %H:%M} UTC"
        )
    folder = ROOT / "layers" / LAYERS[logical_id]
    with tempfile.TemporaryDirectory(prefix="hangar-layer-") as scratch:
        target = Path(scratch) / "python"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        subprocess.run(
            [*pip, "--target", str(target), "-r", str(folder / "requirements.txt")],
            check=True,
            capture_output=True,
        )
        if (folder / "hangar").is_dir():
            shutil.copytree(folder / "hangar", target / "hangar", ignore=shutil.ignore_patterns("__pycache__"))
        return _tree_size(
            Path(scratch),
            f"pip install --target of layers/{folder.name}/requirements.txt (this machine's wheels, no bytecode)",
        )


# --- 3d: bytecode ------------------------------------------------------------------------------------

# A handler's cold start from a copy of the layer and its code directory, as Lambda loads them: nothing
# written back (-B: /opt and /var/task are read-only), the copy ahead of everything else on sys.path.
BYTECODE_SCRIPT = """
import importlib, json, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
from hangar.store import dynamo
dynamo.client()
seconds = time.perf_counter() - started
# botocore is not in the layer: the runtime provides it (here, the venv's)
origins = [sys.modules[name].__file__ for name in ("hangar", "pydantic", "aws_lambda_powertools")]
print(json.dumps({"seconds": seconds, "origins": origins}))
"""


@dataclass(frozen=True)
class BytecodeColdStart:
    function_id: str
    module: str
    python_files: int  # in the layer and the code directory
    with_bytecode_seconds: float  # median: what make build ships (tools.bytecode)
    without_bytecode_seconds: float  # median: sources only, what sam build alone ships
    ratio: float  # median of (without / with, the run just before it)
    repeats: int


def _layer_and_code(scratch: Path, module: HandlerModule) -> tuple[Path, Path]:
    """opt/python (the layer's requirements for this machine, and hangar) and task/ (the code directory)."""
    layer, task = scratch / "opt" / "python", scratch / "task"
    requirements = ROOT / "layers" / "hangar" / "requirements.txt"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*pip, "--target", str(layer), "-r", str(requirements)], check=True, capture_output=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "layers" / "hangar" / "hangar", layer / "hangar", ignore=ignore)
    shutil.copytree(module.code_dir, task, ignore=ignore)
    return layer, task


def _run_from(layer: Path, task: Path, module: str) -> float:
    environment = {**bench_environment(), "PYTHONPATH": os.pathsep.join([str(task), str(layer)])}
    result = subprocess.run(
        [sys.executable, "-B", "-c", BYTECODE_SCRIPT, module],
        cwd=task,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold start of {module} from {task.parent} failed:\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    strays = [origin for origin in report["origins"] if not Path(origin).is_relative_to(task.parent)]
    if strays:  # the measurement must load the copy, not the development install
        raise RuntimeError(f"loaded from outside the copy: {strays}")
    return float(report["seconds"])


def measure_bytecode_cold_start(repeats: int = 3, function_id: str = BREAKDOWN_FUNCTION) -> BytecodeColdStart:
    """One function's cold start with the build's bytecode and without it, runs paired; medians."""
    from tools.bytecode import compile_tree

    module = next(item for item in handler_modules() if item.function_id == function_id)
    with tempfile.TemporaryDirectory(prefix="hangar-bytecode-") as scratch:
        sources = Path(scratch) / "sources"
        layer, task = _layer_and_code(sources, module)
        compiled = Path(scratch) / "compiled"
        shutil.copytree(sources, compiled)
        if not compile_tree(compiled):
            raise RuntimeError("tools.bytecode failed on the layer copy")
        python_files = sum(1 for _ in sources.rglob("*.py"))
        compiled_layer, compiled_task = compiled / layer.relative_to(sources), compiled / task.relative_to(sources)
        _run_from(compiled_layer, compiled_task, module.module)  # the OS's file cache warm for both
        _run_from(layer, task, module.module)
        with_runs: list[float] = []
        without_runs: list[float] = []
        for _ in range(repeats):
            with_runs.append(_run_from(compiled_layer, compiled_task, module.module))
            without_runs.append(_run_from(layer, task, module.module))
    return BytecodeColdStart(
        function_id=function_id,
        module=str(module.module_file.relative_to(ROOT)),
        python_files=python_files,
        with_bytecode_seconds=statistics.median(with_runs),
        without_bytecode_seconds=statistics.median(without_runs),
        ratio=statistics.median(without / with_ for with_, without in zip(with_runs, without_runs, strict=True)),
        repeats=repeats,
    )
