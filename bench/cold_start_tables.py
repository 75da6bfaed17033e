"""Section 3's tables: cold starts per function, what they import, the layers' sizes, bytecode, and what the
cold start is made of."""

from __future__ import annotations

from bench.cold_start import (
    HANGAR_LAYER_TARGET_BYTES,
    HOT_PATH_TARGET_RATIO,
    TARGET_RATIO,
    BytecodeColdStart,
    ColdStarts,
    LayerSize,
    target_ratio,
)
from bench.cold_start_anatomy import ColdStartAnatomy
from bench.tables import Table, megabytes, milliseconds, ratio, verdict


def cold_start_table(cold: ColdStarts) -> Table:
    table = Table(
        f"3. Cold start per function (fresh interpreter, CPU time, median of {cold.repeats}; baseline: import"
        " boto3 + boto3.client('dynamodb'), run alongside each)",
        ["Function", "Handler module", "Import + client", "Ratio", "Target", "Result"],
        align="llrrrl",
    )
    table.add(
        "(baseline)", "import boto3; boto3.client('dynamodb')", milliseconds(cold.baseline_seconds), "1.00x", "", ""
    )
    table.add("(floor)", cold.floor.module, milliseconds(cold.floor.seconds), ratio(cold.floor.ratio), "", "")
    for function in sorted(cold.functions, key=lambda item: -item.ratio):
        table.add(
            function.function_id,
            function.module,
            milliseconds(function.seconds),
            ratio(function.ratio),
            f"<= {target_ratio(function.function_id)}x",
            verdict(cold.passed(function)),
        )
    passed = sum(cold.passed(function) for function in cold.functions)
    table.notes = [
        f"{passed} of {len(cold.functions)} functions within their target: {HOT_PATH_TARGET_RATIO}x for the"
        f" agent's hot paths (heartbeat, poll, job status, runner authorizer), {TARGET_RATIO}x for the others.",
        "Ratio: median of (function run / the baseline run started alongside it). Import + client: the handler module's"
        " import and hangar.store.dynamo.client(), with the code directory as the working directory (as in Lambda),"
        " in CPU time of the process (the machine is shared: wall time would count other processes' turns).",
        "(floor): no Hangar code, only what every API handler is built on (one pydantic model, a validating"
        " resolver, Logger, Metrics): the least a handler can cost.",
    ]
    return table


def import_breakdown_table(cold: ColdStarts) -> Table:
    name = cold.breakdown_function.removesuffix("Function")
    table = Table(
        f"3b. Where {name}'s cold start goes (-X importtime, wall time, median of 3: import self time by top-level"
        " package)",
        ["Package", "Baseline", name],
        align="lrr",
    )
    for share in cold.breakdown:
        table.add(share.package, milliseconds(share.baseline_seconds), milliseconds(share.function_seconds))
    return table


def layer_size_table(layers: dict[str, LayerSize]) -> Table:
    table = Table(
        "3c. The layers, unzipped (target: the Hangar layer <= 25 MB; Lambda's limit: 250 MB with the function)",
        ["Layer", "Entry", "Size"],
        "llr",
    )
    for logical_id, layer in layers.items():
        table.add(logical_id, f"total ({layer.files:,} files)", megabytes(layer.total_bytes))
        for entry, size in layer.largest:
            table.add("", entry, megabytes(size))
    hangar = layers["HangarLayer"]
    table.notes = [
        *(f"{logical_id} measured from: {layer.source}." for logical_id, layer in layers.items()),
        f"HangarLayer (every function): {megabytes(hangar.total_bytes)},"
        f" {verdict(hangar.total_bytes <= HANGAR_LAYER_TARGET_BYTES)};"
        " JwtLayer: the user authorizer only. No botocore in either: the python3.13 runtime provides boto3.",
    ]
    return table


def bytecode_table(cold: BytecodeColdStart) -> Table:
    name = cold.function_id.removesuffix("Function")
    table = Table(
        f"3d. {name}'s cold start with the build's bytecode and without it (fresh interpreter, nothing written"
        f" back, median of {cold.repeats}; baseline: with bytecode)",
        ["Layer and code as", "Import + client", "Ratio"],
        align="lrr",
    )
    table.add("make build ships them (sam build + tools.bytecode)", milliseconds(cold.with_bytecode_seconds), "1.00x")
    table.add(
        "sam build alone ships them (sources only)", milliseconds(cold.without_bytecode_seconds), ratio(cold.ratio)
    )
    table.notes = [
        f"A copy of the layer (this machine's wheels of layers/hangar/requirements.txt, and hangar) and of"
        f" {cold.module}'s code directory: {cold.python_files:,} .py files, run with -B as Lambda's read-only"
        " /opt and /var/task allow no cache; without bytecode every one of them is compiled at each cold start.",
        "Ratio: median of (run without / the run with just before it). Under emulation (sam local on arm64 through"
        " qemu) the same compile costs tens of seconds.",
    ]
    return table


def anatomy_tables(anatomy: ColdStartAnatomy) -> list[Table]:
    ladder = Table(
        f"3e. What the cold start is made of: the libraries step by step, and the hot paths without request"
        f" validation (fresh interpreter, Python {anatomy.python_version}, median of {anatomy.repeats}; baseline:"
        " import boto3 + boto3.client('dynamodb'), run alongside each)",
        ["Run", "CPU time", "CPU ratio", "Wall time", "Wall ratio"],
        align="lrrrr",
    )
    for row in anatomy.ladder:
        ladder.add(
            row.label,
            milliseconds(row.cpu_seconds),
            ratio(row.cpu_ratio),
            milliseconds(row.wall_seconds),
            ratio(row.wall_ratio),
        )
    ladder.notes = [
        "Validation off: Powertools' ApiGatewayResolver.__init__ made to force enable_validation=False before the"
        " handler module loads (in the measuring process only; the code is unchanged). Handlers run in their code"
        " directory, the library rows in the repository's.",
        "CPU ratio is section 3's clock; the issue's 1.31x floor was measured in wall time with the first row's"
        " script.",
    ]
    imports = Table(
        f"3f. Heartbeat: the ten largest imports by self time (-X importtime, wall, median of 3; the whole timed"
        f" region took {milliseconds(anatomy.wall_total_seconds)} wall)",
        ["Module", "Self", "Cumulative"],
        align="lrr",
    )
    for cost in anatomy.top_imports:
        imports.add(cost.module, milliseconds(cost.self_seconds), milliseconds(cost.cumulative_seconds))
    groups = Table(
        "3g. Heartbeat: import self time by what it belongs to (-X importtime, wall, median of 3)",
        ["Belongs to", "Self time", "Share"],
        align="lrr",
    )
    total = sum(anatomy.groups.values())
    shown = [(name, seconds) for name, seconds in anatomy.groups.items() if not name.startswith("other (")]
    others = total - sum(seconds for _, seconds in shown)
    for name, seconds in [*shown, ("other packages", others)]:
        groups.add(name, milliseconds(seconds), f"{seconds / total:.0%}")
    groups.notes = [
        "A pydantic model's schema is built when its class statement runs: that time is the defining module's"
        " self time (hangar.core.config's Settings, hangar.models.*).",
    ]
    return [ladder, imports, groups]


# --- 4 -----------------------------------------------------------------------------------------------
