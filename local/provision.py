"""Creating the template's resources locally: DynamoDB tables (in the embedded backend or an external
DynamoDB), and in the embedded backend the S3 buckets, KMS keys, secrets, usage plans and API keys.

SQS queues and the event bus are created in the embedded backend too; local.event_sources polls the
queues and the tables' streams for the functions that read them.

Every resource type of the template is either provisioned here, read by another module of local/, or
listed with the reason it has no local counterpart; any other type raises `NotSupportedLocally`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template import (
    ACCOUNT_ID,
    BUCKET_TYPE,
    REGION,
    STACK_NAME,
    TABLE_TYPE,
    NotSupportedLocally,
    Resolver,
    in_resource,
    local_bucket_name,
    local_table_name,
    resources,
    table_definitions,
)

PROVISIONED = {
    TABLE_TYPE,
    BUCKET_TYPE,
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
}
READ_BY_OTHER_MODULES = {
    "AWS::Serverless::Function",  # local.functions
    "AWS::Serverless::Api",  # local.gateway
    "AWS::WAFv2::WebACL",  # local.limits
    "AWS::WAFv2::WebACLAssociation",
}
NO_LOCAL_COUNTERPART = {
    "AWS::Serverless::LayerVersion",  # the hangar package is importable from the checkout
    "AWS::Logs::LogGroup",  # logs go to the terminal
    "AWS::Logs::MetricFilter",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::IAM::Role",  # no permissions locally
    "AWS::ApiGateway::Account",  # access logging's role
    "AWS::SQS::QueuePolicy",  # no permissions locally
    # The artifacts bucket's TLS-only policy: the embedded S3 speaks plain HTTP on 127.0.0.1, and checks
    # what the API relies on (presigned signatures, no anonymous access) in local.s3_signatures.
    "AWS::S3::BucketPolicy",
    # The console's hosting: make run serves console/ itself, with the same headers (local.site); its
    # bucket is created in the embedded S3 like any other and stays empty.
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::CloudFront::Distribution",
}


def check_resource_types(template: Mapping[str, Any]) -> None:
    known = PROVISIONED | READ_BY_OTHER_MODULES | NO_LOCAL_COUNTERPART
    for logical_id, resource in resources(template).items():
        if resource.get("Type") not in known:
            raise NotSupportedLocally(f"the resource type {resource.get('Type')}", logical_id)


def ensure_tables(dynamodb: Any, template: Mapping[str, Any]) -> list[str]:
    """Creates the tables that do not exist (with TTL) and leaves existing ones, and their data, as they
    are: a restart against an external DynamoDB keeps its data. Returns the tables' names."""
    existing = {name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]}
    names = []
    for arguments in table_definitions(template).values():
        arguments = dict(arguments)
        ttl_attribute = arguments.pop("TimeToLiveAttribute", None)
        name = arguments["TableName"]
        created = name not in existing
        if created:
            status = dynamodb.create_table(**arguments)["TableDescription"].get("TableStatus")
            # DynamoDB Local and moto answer ACTIVE at once; AWS answers CREATING, and TTL waits for ACTIVE.
            if status != "ACTIVE":
                dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        # A table just created has TTL off; an existing one may have it on already.
        ttl = {} if created else dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl_attribute and ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )
        names.append(name)
    return names


def local_kms_alias(logical_id: str) -> str:
    return f"alias/hangar-local-{logical_id}"


@dataclass
class Provisioned:
    """What provisioning created: the values `!Ref` / `!GetAtt` resolve to locally."""

    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)

    def resolver(self, template: Mapping[str, Any]) -> Resolver:
        return Resolver(template, self.refs, self.attrs)


def provision(template: Mapping[str, Any], session: Any, dynamodb: Any) -> Provisioned:
    """The template's resources: tables through `dynamodb`, the rest in the embedded backend (`session`)."""
    check_resource_types(template)
    done = Provisioned(tables=ensure_tables(dynamodb, template))
    done.refs.update({logical_id: local_table_name(logical_id) for logical_id in resources(template, TABLE_TYPE)})

    def each(kind: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for logical_id, resource in resources(template, kind).items():
            with in_resource(logical_id):
                found.append((logical_id, done.resolver(template).try_resolve(resource.get("Properties"), {}) or {}))
        return found

    s3 = session.client("s3")
    for logical_id in resources(template, BUCKET_TYPE):
        done.refs[logical_id] = local_bucket_name(logical_id)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=done.refs[logical_id])
    kms, secretsmanager, apigateway = (session.client(name) for name in ("kms", "secretsmanager", "apigateway"))
    for logical_id, properties in each("AWS::KMS::Key"):
        key = kms.create_key(Description=str(properties.get("Description") or logical_id))["KeyMetadata"]
        done.refs[logical_id] = key["KeyId"]
        # A fixed name for the random key: what local/sam-env.json can name (KMS takes an alias as KeyId).
        with contextlib.suppress(kms.exceptions.AlreadyExistsException):
            kms.create_alias(AliasName=local_kms_alias(logical_id), TargetKeyId=key["KeyId"])
        done.attrs[(logical_id, "Arn")] = key["Arn"]
    for logical_id, properties in each("AWS::SecretsManager::Secret"):
        value = properties.get("SecretString") or secrets.token_urlsafe(32)
        done.refs[logical_id] = secretsmanager.create_secret(Name=logical_id, SecretString=value)["ARN"]
    for logical_id, properties in each("AWS::ApiGateway::UsagePlan"):
        arguments: dict[str, Any] = {"name": str(properties.get("UsagePlanName") or logical_id)}
        if throttle := properties.get("Throttle"):
            arguments["throttle"] = {
                "burstLimit": int(throttle["BurstLimit"]),
                "rateLimit": float(throttle["RateLimit"]),
            }
        if quota := properties.get("Quota"):
            arguments["quota"] = {"limit": int(quota["Limit"]), "period": str(quota["Period"])}
        done.refs[logical_id] = apigateway.create_usage_plan(**arguments)["id"]
    for logical_id, properties in each("AWS::ApiGateway::ApiKey"):
        name = str(properties.get("Name") or logical_id)
        done.refs[logical_id] = apigateway.create_api_key(name=name, enabled=bool(properties.get("Enabled")))["id"]
    provision_queues(template, session, done)
    events = session.client("events")
    for logical_id, properties in each("AWS::Events::EventBus"):
        name = str(properties.get("Name") or logical_id)
        with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
            events.create_event_bus(Name=name)
        done.refs[logical_id] = name
        done.attrs[(logical_id, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"
    for _, properties in each("AWS::ApiGateway::UsagePlanKey"):
        apigateway.create_usage_plan_key(
            usagePlanId=str(properties["UsagePlanId"]), keyId=str(properties["KeyId"]), keyType="API_KEY"
        )
    return done


# Queue attributes CreateQueue takes as the template writes them; the rest (encryption) has no local meaning.
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


def provision_queues(template: Mapping[str, Any], session: Any, done: Provisioned) -> None:
    """Every queue (its URL is its Ref, `Arn` and `QueueName` its attributes), then the redrive policies,
    which name other queues' ARNs."""
    sqs = session.client("sqs")
    queues = resources(template, "AWS::SQS::Queue")
    for logical_id in queues:
        name = f"{STACK_NAME}-{logical_id}"
        raw, resolver = queues[logical_id].get("Properties") or {}, done.resolver(template)
        attributes = {key: str(resolver.resolve(raw[key])) for key in _QUEUE_ATTRIBUTES if key in raw}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        done.refs[logical_id] = url
        done.attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        done.attrs[(logical_id, "QueueName")] = name
    for logical_id in queues:
        properties = done.resolver(template).try_resolve(queues[logical_id].get("Properties"), {}) or {}
        if redrive := properties.get("RedrivePolicy"):
            policy = json.dumps({key: str(value) for key, value in redrive.items()})
            sqs.set_queue_attributes(QueueUrl=done.refs[logical_id], Attributes={"RedrivePolicy": policy})


def restore_tenant_keys(backend_endpoint: str, session: Any, dynamodb: Any, orgs_table: str, prefix: str) -> int:
    """After a restart against an external DynamoDB: give each tenant recorded there (`usageKeyId`,
    `usageKey` and `plan` on its org item) its API Gateway key again, with the same id and value, in the
    usage plan named `<prefix><plan>`. The embedded API Gateway starts empty; without this every existing
    tenant would get 403 "no usage plan". Returns how many tenants it restored."""
    apigateway = session.client("apigateway")
    plans = {plan["name"]: plan["id"] for plan in apigateway.get_usage_plans(limit=500)["items"]}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=orgs_table,
        FilterExpression="attribute_exists(usageKeyId)",
        ProjectionExpression="orgId, usageKeyId, usageKey, #plan",
        ExpressionAttributeNames={"#plan": "plan"},
    )
    restored = 0
    for item in (item for page in pages for item in page["Items"]):
        key_id, value = item["usageKeyId"]["S"], item["usageKey"]["S"]
        body = json.dumps({"value": value, "id": key_id}).encode()
        request = urllib.request.Request(f"{backend_endpoint}/_local/api-key-ids", data=body, method="POST")
        urllib.request.urlopen(request, timeout=10).close()  # the backend will give that value this id
        name = f"{prefix}tenant-{item['orgId']['S']}"
        created = apigateway.create_api_key(name=name, value=value, enabled=True)["id"]
        plan_id = plans.get(prefix + item.get("plan", {}).get("S", "free"))
        if plan_id and created == key_id:
            apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
            restored += 1
    return restored
