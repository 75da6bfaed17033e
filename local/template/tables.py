"""The template's DynamoDB tables as CreateTable arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.template.intrinsics import Resolver
from local.template.reading import TABLE_TYPE, NotSupportedLocally, in_resource, local_table_name, resources

_TABLE_PROPERTIES = {
    # Sent to CreateTable:
    "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode", "TimeToLiveSpecification",
    "StreamSpecification",
    # No behaviour a local caller could see:
    "PointInTimeRecoverySpecification", "SSESpecification", "Tags", "DeletionProtectionEnabled", "TableName",
    "ContributorInsightsSpecification",
}  # fmt: skip


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> CreateTable arguments (on demand), plus `TimeToLiveAttribute` when TTL is on."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources(template, TABLE_TYPE).items():
        with in_resource(logical_id):
            properties = Resolver(template).resolve(resource.get("Properties") or {})
        for unknown in sorted(set(properties) - _TABLE_PROPERTIES):
            raise NotSupportedLocally(f"the table property {unknown}", logical_id)
        arguments: dict[str, Any] = {
            "TableName": local_table_name(logical_id),
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        stream = properties.get("StreamSpecification") or {}
        if stream:
            arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        ttl = properties.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            arguments["TimeToLiveAttribute"] = ttl["AttributeName"]
        found[logical_id] = arguments
    return found


def create_tables(dynamodb_client: Any, template: Mapping[str, Any]) -> list[str]:
    """The template's tables, created where missing (see `local.provision.ensure_tables`)."""
    from local.provision import ensure_tables

    return ensure_tables(dynamodb_client, template)
