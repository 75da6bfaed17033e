"""The template's non-API events: schedules, DynamoDB streams and SQS queues."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.template.function_specs import function_properties
from local.template.reading import ACCOUNT_ID, FUNCTION_TYPE, REGION, STACK_NAME, NotSupportedLocally, resources


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
