"""The template's functions: where each handler lives, its properties (Globals merged in) and the
environment they share locally."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import REPO_ROOT
from local.template.intrinsics import Resolver, as_env_value
from local.template.reading import FUNCTION_TYPE, NotSupportedLocally, NoValue, Unresolvable, in_resource, resources


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function: where its handler lives and how it is configured."""

    logical_id: str
    code_dir: Path
    handler: str  # e.g. "create_runner.handler"
    timeout: int = 3
    memory_size: int = 128
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def module_file(self) -> Path:
        """functions/runners/create_runner.py for `create_runner.handler` under functions/runners/."""
        return self.code_dir / (self.handler.rpartition(".")[0].replace(".", "/") + ".py")

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def globals_of(template: Mapping[str, Any], section: str) -> dict[str, Any]:
    return dict((template.get("Globals") or {}).get(section) or {})


def function_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties with Globals.Function merged in (the function's own values win)."""
    merged = globals_of(template, "Function")
    own = dict(resources(template)[logical_id].get("Properties") or {})
    env_global = (merged.get("Environment") or {}).get("Variables") or {}
    merged.update(own)
    env_own = (own.get("Environment") or {}).get("Variables") or {}
    if env_global or env_own:
        merged["Environment"] = {"Variables": {**env_global, **env_own}}
    return merged


def functions(template: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, its CodeUri relative to `base_dir` (the template's directory)."""
    resolver = Resolver(template)
    found: dict[str, FunctionSpec] = {}
    for logical_id in resources(template, FUNCTION_TYPE):
        properties = function_properties(template, logical_id)
        with in_resource(logical_id):
            code_uri, handler = resolver.resolve(properties.get("CodeUri")), resolver.resolve(properties.get("Handler"))
            if not isinstance(code_uri, str) or not isinstance(handler, str):
                raise NotSupportedLocally("a function without a local CodeUri directory and Handler")
            found[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=((base_dir or REPO_ROOT) / code_uri).resolve(),
                handler=handler,
                timeout=int(resolver.resolve(properties.get("Timeout", 3))),
                memory_size=int(resolver.resolve(properties.get("MemorySize", 128))),
                properties=properties,
            )
    return found


def function_environment(template: Mapping[str, Any], resolver: Resolver | None = None) -> dict[str, str]:
    """The functions' merged environment (Globals, then each function's own), resolved. They share one
    process locally: a variable two functions set differently is reported and the later value kept."""
    resolver = resolver or Resolver(template)
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for logical_id in resources(template, FUNCTION_TYPE):
        variables = (function_properties(template, logical_id).get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            try:
                with in_resource(f"{logical_id} Environment.{name}"):
                    resolved = as_env_value(resolver.resolve(value))
            except (Unresolvable, NoValue):
                continue
            if name in merged and merged[name] != resolved:
                print(
                    f"local: {name} differs in {origin[name]} and {logical_id}; using {logical_id}'s", file=sys.stderr
                )
            merged[str(name)], origin[str(name)] = resolved, logical_id
    return merged
