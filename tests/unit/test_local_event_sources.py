"""local/'s emulation of Lambda event filtering and of the template's event source mappings."""

from __future__ import annotations

import pytest
from support import template

from local.event_sources import matches, passes
from local.template import NotSupportedLocally, event_sources

RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {"OldImage": {"status": {"S": "offline"}}, "NewImage": {"status": {"S": "online"}}},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["MODIFY"]}, True),
        ({"eventName": ["INSERT", "REMOVE"]}, False),
        ({"dynamodb": {"OldImage": {"status": {"S": ["offline"]}}, "NewImage": {"status": {"S": ["online"]}}}}, True),
        ({"dynamodb": {"OldImage": {"status": {"S": ["online"]}}, "NewImage": {"status": {"S": ["online"]}}}}, False),
        ({"dynamodb": {"NewImage": {"setupToken": {"S": [{"exists": True}]}}}}, False),
        ({"dynamodb": {"NewImage": {"setupToken": {"S": [{"exists": False}]}}}}, True),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["offline"]}]}}}}, True),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "on"}]}}}}, True),
        ({"eventName": ["MODIFY"], "missing": ["x"]}, False),
    ],
)
def test_filter_patterns_match_as_lambda_does(pattern: dict[str, object], expected: bool) -> None:
    assert matches(pattern, RECORD) is expected


def test_no_filter_passes_everything_and_any_filter_may_pass() -> None:
    assert passes((), RECORD)
    assert passes(({"eventName": ["INSERT"]}, {"eventName": ["MODIFY"]}), RECORD)


def test_a_matcher_local_does_not_emulate_fails_loudly() -> None:
    with pytest.raises(NotSupportedLocally):
        matches(
            {"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 0]}]}}}},
            {"dynamodb": {"NewImage": {"n": {"N": "1"}}}},
        )


def test_the_template_wires_both_streams_and_the_delivery_queue() -> None:
    specs = {(spec.function_id, spec.source): spec for spec in event_sources(template())}
    assert set(specs) == {
        ("EventProcessorFunction", "RunnersTable"),
        ("EventProcessorFunction", "JobsTable"),
        ("WebhookDeliveryFunction", "DeliveryQueue"),
    }
    assert all(spec.report_batch_item_failures for spec in specs.values())
    assert specs[("WebhookDeliveryFunction", "DeliveryQueue")].batch_size == 1
    assert specs[("EventProcessorFunction", "RunnersTable")].filters
