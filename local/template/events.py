"""The template's non-API events: schedules, DynamoDB streams and SQS queues."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.template.function_specs import function_properties
from local.template.reading import (
    ACCOUNT_ID,
    FUNCTION_TYPE,
    REGION,
    STACK_NAME,
    NotSupportedLocally,
    in_resource,
    resources,
)


@dataclass(frozen=True)
class ScheduleSpec:
    """A `Type: Schedule` event: run `function_id` at `expression` (rate(...) or cron(...))."""

    function_id: str
    event_name: str
    expression: str
    enabled: bool = True

    @property
    def rule_arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{STACK_NAME}-{self.function_id}{self.event_name}"


_SCHEDULE_PROPERTIES = {"Schedule", "Enabled", "Description", "DeadLetterConfig", "RetryPolicy", "Name"}


def schedules(template: Mapping[str, Any]) -> list[ScheduleSpec]:
    """Every schedule event of every function (dead-letter and retry settings have no local meaning)."""
    found: list[ScheduleSpec] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        for event_name, event in (function_properties(template, logical_id).get("Events") or {}).items():
            if event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            properties = event.get("Properties") or {}
            where = f"{logical_id}.{event_name}"
            if event["Type"] != "Schedule":
                raise NotSupportedLocally(f"the event type {event['Type']}", where)
            for unknown in sorted(set(properties) - _SCHEDULE_PROPERTIES):
                raise NotSupportedLocally(f"the Schedule event property {unknown}", where)
            enabled = bool(properties.get("Enabled", True))
            found.append(ScheduleSpec(logical_id, str(event_name), str(properties["Schedule"]), enabled))
    return found


# -- event source mappings (DynamoDB streams, SQS queues) -----------------------------------------------


@dataclass(frozen=True)
class EventSourceSpec:
    """A `Type: DynamoDB` or `Type: SQS` event: Lambda polls `source` (a table's stream, or a queue; its
    logical id) and invokes `function_id` with batches of at most `batch_size` records."""

    function_id: str
    event_name: str
    kind: str  # "DynamoDB" or "SQS"
    source: str
    batch_size: int
    filters: tuple[Mapping[str, Any], ...] = ()
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # DynamoDB: -1 retries until the record expires


Matcher = Callable[[Mapping[str, Any] | None], bool]


def _leaf(matcher: Any) -> Callable[[bool, Any], bool]:
    """One matcher of a pattern's list, as (present, value) -> matched."""
    if not isinstance(matcher, dict):
        return lambda present, value: present and value == matcher
    if set(matcher) == {"exists"}:
        wanted = bool(matcher["exists"])
        return lambda present, value: present is wanted
    if set(matcher) == {"prefix"}:
        prefix = str(matcher["prefix"])
        return lambda present, value: present and isinstance(value, str) and value.startswith(prefix)
    if set(matcher) == {"anything-but"}:
        excluded = matcher["anything-but"]
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return lambda present, value: present and value not in excluded
    raise NotSupportedLocally(f"the filter pattern matcher {json.dumps(matcher)}")


def _key_matcher(key: str, expected: Any) -> Callable[[Mapping[str, Any]], bool]:
    if isinstance(expected, Mapping):
        nested = compile_filter(expected)

        def nested_matches(record: Mapping[str, Any]) -> bool:
            value = record.get(key)
            return nested(value if isinstance(value, Mapping) else None)

        return nested_matches
    if isinstance(expected, list):
        leaves = [_leaf(matcher) for matcher in expected]

        def any_leaf_matches(record: Mapping[str, Any]) -> bool:
            return any(leaf(key in record, record.get(key)) for leaf in leaves)

        return any_leaf_matches
    raise NotSupportedLocally(f"the filter pattern value {expected!r} (a list or an object)")


def compile_filter(pattern: Mapping[str, Any]) -> Matcher:
    """A Lambda filter pattern as a test of a record: every key of the pattern matches (a list: any of its
    matchers; a mapping: the nested pattern). A matcher local/ does not emulate raises here, not later."""
    checks = [_key_matcher(str(key), expected) for key, expected in pattern.items()]

    def matches(record: Mapping[str, Any] | None) -> bool:
        present = record if isinstance(record, Mapping) else {}
        return all(check(present) for check in checks)

    return matches


_EVENT_SOURCE_PROPERTIES = {
    "DynamoDB": {
        "Stream", "StartingPosition", "BatchSize", "FilterCriteria", "FunctionResponseTypes", "MaximumRetryAttempts",
        # AWS's ways to shape and park batches, with no local meaning: one process polls every source in
        # order, and a batch that keeps failing after its retries is printed instead of parked.
        "MaximumBatchingWindowInSeconds", "BisectBatchOnFunctionError", "DestinationConfig",
    },
    "SQS": {"Queue", "BatchSize", "FunctionResponseTypes"},
}  # fmt: skip
_SOURCE_ATTRIBUTE = {"DynamoDB": ("Stream", "StreamArn"), "SQS": ("Queue", "Arn")}


def event_sources(template: Mapping[str, Any]) -> list[EventSourceSpec]:
    """Every DynamoDB stream and SQS queue event of every function."""
    found: list[EventSourceSpec] = []
    for logical_id in resources(template, FUNCTION_TYPE):
        for event_name, event in (function_properties(template, logical_id).get("Events") or {}).items():
            kind = event.get("Type")
            if kind not in _EVENT_SOURCE_PROPERTIES:
                continue
            properties = event.get("Properties") or {}
            where = f"{logical_id}.{event_name}"
            for unknown in sorted(set(properties) - _EVENT_SOURCE_PROPERTIES[kind]):
                raise NotSupportedLocally(f"the {kind} event property {unknown}", where)
            name, attribute = _SOURCE_ATTRIBUTE[kind]
            reference = (properties.get(name) or {}).get("Fn::GetAtt")
            if not reference or reference[1] != attribute:
                raise NotSupportedLocally(f"{name} other than !GetAtt <resource>.{attribute}", where)
            if kind == "DynamoDB" and properties.get("StartingPosition") != "TRIM_HORIZON":
                raise NotSupportedLocally("StartingPosition other than TRIM_HORIZON", where)
            filters = tuple(
                json.loads(entry["Pattern"]) for entry in (properties.get("FilterCriteria") or {}).get("Filters") or ()
            )
            with in_resource(where):
                for pattern in filters:
                    compile_filter(pattern)
            found.append(
                EventSourceSpec(
                    function_id=logical_id,
                    event_name=str(event_name),
                    kind=str(kind),
                    source=str(reference[0]),
                    batch_size=int(properties.get("BatchSize", 100 if kind == "DynamoDB" else 10)),
                    filters=filters,
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or ()),
                    maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                )
            )
    return found
