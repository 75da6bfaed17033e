"""Matching a request to a template route the way API Gateway (REST) does: resource by resource, a static
segment beats a `{param}` segment; a trailing slash names the same resource; path parameters are
URL-decoded. A path that matches no resource, or a resource without that method, is no route (the
gateway's MISSING_AUTHENTICATION_TOKEN response)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from local.template import Route


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def split_path(raw_path: str) -> list[str] | None:
    """The path's segments, URL-decoded, a trailing slash ignored; None for a path that cannot match."""
    parts = raw_path[1:].split("/") if raw_path.startswith("/") else [""]
    if parts and parts[-1] == "":
        parts.pop()
    return None if "" in parts else [unquote(part) for part in parts]


class Router:
    """The template's resources (paths) and the methods on each."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.resources: dict[tuple[str, ...], dict[str, Route]] = {}
        for route in routes:
            self.resources.setdefault(route.segments, {})[route.method] = route

    def match(self, method: str, raw_path: str) -> Match | None:
        found = self._resource(raw_path)
        if found is None:
            return None
        resource, segments = found
        route = self.resources[resource].get(method.upper())
        if route is None:
            return None
        parameters = {t[1:-1]: s for t, s in zip(resource, segments, strict=True) if _is_parameter(t)}
        return Match(route, parameters)

    def methods(self, raw_path: str) -> set[str]:
        """The methods of the resource `raw_path` names (none when it names no resource)."""
        found = self._resource(raw_path)
        return set(self.resources[found[0]]) if found else set()

    def _resource(self, raw_path: str) -> tuple[tuple[str, ...], list[str]] | None:
        segments = split_path(raw_path)
        if segments is None:
            return None
        best: tuple[list[bool], tuple[str, ...]] | None = None
        for resource in self.resources:
            if len(resource) != len(segments):
                continue
            if all(_is_parameter(t) or t == s for t, s in zip(resource, segments, strict=True)):
                rank = [_is_parameter(t) for t in resource]  # static (False) first, segment by segment
                if best is None or rank < best[0]:
                    best = (rank, resource)
        return None if best is None else (best[1], segments)
