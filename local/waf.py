"""template.yaml's AWS WAF rate-based rules (the web ACL associated with the API): what each counts, how
it aggregates requests and what a Block answers. Only rate-based rules with a regex scope-down on the URI
path and header or IP keys without text transformations are understood."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from local.outcomes import Refusal, RequestInfo
from local.template import NotSupportedLocally, Resolver, api_settings, in_resource, resources


@dataclass(frozen=True)
class WafRule:
    """One rate-based rule of an associated web ACL: at most `rate_limit` requests per trailing
    `rate_window_seconds` per aggregation instance, for requests its scope-down statement matches."""

    name: str
    priority: int
    action: str  # Block | Count
    statement: Mapping[str, Any]  # the scope-down statement
    refusal: Refusal | None  # what a Block answers
    rate_limit: int
    rate_window_seconds: int
    aggregation: tuple[Mapping[str, Any], ...]  # ({"IP": {}},) or ({"Header": {"Name": ...}}, ...)


def _block_refusal(action: Mapping[str, Any], bodies: Mapping[str, Any]) -> Refusal:
    custom = (action.get("Block") or {}).get("CustomResponse") or {}
    if not custom:  # WAF's default block response
        return Refusal(status=403, body='{"message": "Forbidden"}')
    content = (bodies.get(str(custom.get("CustomResponseBodyKey"))) or {}).get("Content", "")
    headers = {str(h["Name"]): str(h["Value"]) for h in custom.get("ResponseHeaders") or []}
    return Refusal(status=int(custom.get("ResponseCode", 403)), body=str(content), headers=headers)


def _check_transformations(transformations: Iterable[Mapping[str, Any]]) -> None:
    for transformation in transformations or ():
        if transformation.get("Type") != "NONE":
            raise NotSupportedLocally(f"the WAF text transformation {transformation.get('Type')}")


def _statement(statement: Mapping[str, Any]) -> Mapping[str, Any]:
    """A scope-down statement local/ evaluates: a RegexMatchStatement on the URI path."""
    spec = statement.get("RegexMatchStatement") or {}
    if set(statement) != {"RegexMatchStatement"} or set(spec.get("FieldToMatch") or {}) != {"UriPath"}:
        raise NotSupportedLocally(f"the WAF statement {' '.join(sorted(statement))}")
    _check_transformations(spec.get("TextTransformations") or ())
    return statement


def _aggregation(rate: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    key_type = rate.get("AggregateKeyType", "IP")
    if key_type == "IP":
        return ({"IP": {}},)
    if key_type != "CUSTOM_KEYS":
        raise NotSupportedLocally(f"the WAF AggregateKeyType {key_type}")
    for key in rate.get("CustomKeys") or ():
        if set(key) != {"Header"}:
            raise NotSupportedLocally(f"the WAF aggregation key {' '.join(sorted(key))}")
        _check_transformations(key["Header"].get("TextTransformations"))
    return tuple(rate.get("CustomKeys") or ())


def _rule(rule: Mapping[str, Any], bodies: Mapping[str, Any]) -> WafRule:
    rate = (rule.get("Statement") or {}).get("RateBasedStatement")
    action = next(iter(rule.get("Action") or {"Count": {}}))
    if rate is None:
        raise NotSupportedLocally(f"the WAF statement {' '.join(sorted(rule.get('Statement') or {}))}")
    if action not in ("Block", "Count"):
        raise NotSupportedLocally(f"the WAF action {action}")
    return WafRule(
        name=str(rule["Name"]),
        priority=int(rule.get("Priority", 0)),
        action=action,
        statement=_statement(rate["ScopeDownStatement"]) if "ScopeDownStatement" in rate else {},
        refusal=_block_refusal(rule["Action"], bodies),
        rate_limit=int(rate["Limit"]),
        rate_window_seconds=int(rate.get("EvaluationWindowSec", 300)),
        aggregation=_aggregation(rate),
    )


def waf_rules(template: Mapping[str, Any]) -> list[WafRule]:
    """The rules of every web ACL associated with the template's API, in priority order."""
    api = api_settings(template)
    resolver = Resolver(template)
    rules: list[WafRule] = []
    for association in resources(template, "AWS::WAFv2::WebACLAssociation").values():
        properties = association.get("Properties") or {}
        if not api.logical_id or api.logical_id not in repr(properties.get("ResourceArn")):
            continue
        acl_id = properties["WebACLArn"]["Fn::GetAtt"][0]
        with in_resource(acl_id):
            acl = resolver.try_resolve(resources(template)[acl_id].get("Properties"), {}) or {}
        for rule in acl.get("Rules") or []:
            with in_resource(f"{acl_id} rule {rule.get('Name')}"):
                rules.append(_rule(rule, acl.get("CustomResponseBodies") or {}))
    return sorted(rules, key=lambda rule: rule.priority)


def statement_matches(statement: Mapping[str, Any], request: RequestInfo) -> bool:
    """A scope-down statement against the request (an empty one matches everything)."""
    if not statement:
        return True
    return re.search(str(statement["RegexMatchStatement"]["RegexString"]), request.path) is not None


def aggregation_key(rule: WafRule, request: RequestInfo) -> tuple[str, ...] | None:
    """The rule's aggregation instance for the request; None when a key is missing (WAF skips it)."""
    values = [
        request.source_ip if "IP" in key else request.header(str(key["Header"]["Name"])) for key in rule.aggregation
    ]
    return None if any(not value for value in values) else tuple(str(value) for value in values)
