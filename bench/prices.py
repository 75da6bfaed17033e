"""Every AWS price the bench uses, in one table: us-east-1 list prices, with their date and source page.

Free tiers are ignored (a deployment's own bill, not a new account's). The figures are AWS's published
on-demand list prices as they stood on `PRICES_AS_OF`; they were not fetched by the bench (it has no
network), so check the pages before relying on them. `make bench` prints the table (5f) and
docs/performance.md reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"
PRICES_AS_OF = "2024-11-15"  # DynamoDB on-demand after its 1 November 2024 reduction


@dataclass(frozen=True)
class Price:
    item: str
    dollars: float
    unit: str
    source: str


_API_GATEWAY = "https://aws.amazon.com/api-gateway/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_WAF = "https://aws.amazon.com/waf/pricing/"

API_GATEWAY_REST = Price("API Gateway REST API requests (first 333 million a month)", 3.50, "per million", _API_GATEWAY)
WAF_REQUESTS = Price("WAF requests inspected", 0.60, "per million", _WAF)
WAF_WEB_ACL = Price("WAF web ACL", 5.00, "per month", _WAF)
WAF_RULE = Price("WAF rule (per rule in a web ACL)", 1.00, "per month", _WAF)
LAMBDA_REQUESTS = Price("Lambda requests", 0.20, "per million", _LAMBDA)
LAMBDA_ARM_GB_SECOND = Price("Lambda compute, arm64", 0.0000133334, "per GB-second", _LAMBDA)
DYNAMODB_WRU = Price("DynamoDB on-demand write request units", 0.625, "per million", _DYNAMODB)
DYNAMODB_RRU = Price("DynamoDB on-demand read request units", 0.125, "per million", _DYNAMODB)
DYNAMODB_STORAGE = Price("DynamoDB storage (Standard table class)", 0.25, "per GB-month", _DYNAMODB)
DYNAMODB_PITR = Price("DynamoDB point-in-time recovery", 0.20, "per GB-month", _DYNAMODB)
LOGS_INGESTED = Price("CloudWatch Logs ingested (standard)", 0.50, "per GB", _CLOUDWATCH)
LOGS_STORED = Price("CloudWatch Logs stored (archived)", 0.03, "per GB-month", _CLOUDWATCH)
CUSTOM_METRIC = Price("CloudWatch custom metric (first 10,000)", 0.30, "per metric-month", _CLOUDWATCH)
ALARM_METRIC = Price("CloudWatch alarm, standard resolution", 0.10, "per alarm metric-month", _CLOUDWATCH)
DASHBOARD = Price("CloudWatch dashboard", 3.00, "per dashboard-month", _CLOUDWATCH)
XRAY_TRACES = Price("X-Ray traces recorded", 5.00, "per million", "https://aws.amazon.com/xray/pricing/")
SQS_REQUESTS = Price(
    "SQS standard queue requests (64 KB chunks)", 0.40, "per million", "https://aws.amazon.com/sqs/pricing/"
)
EVENTBRIDGE_EVENTS = Price(
    "EventBridge custom events published", 1.00, "per million", "https://aws.amazon.com/eventbridge/pricing/"
)
KMS_KEY = Price("KMS customer managed key", 1.00, "per key-month", "https://aws.amazon.com/kms/pricing/")
KMS_REQUESTS = Price("KMS requests (symmetric)", 3.00, "per million", "https://aws.amazon.com/kms/pricing/")
SECRET = Price("Secrets Manager secret", 0.40, "per secret-month", "https://aws.amazon.com/secrets-manager/pricing/")
S3_STANDARD = Price("S3 Standard storage (first 50 TB)", 0.023, "per GB-month", _S3)
S3_PUT = Price("S3 PUT, COPY, POST, LIST requests", 0.005, "per 1,000", _S3)
S3_GET = Price("S3 GET and other requests", 0.0004, "per 1,000", _S3)

PRICES: tuple[Price, ...] = (
    API_GATEWAY_REST, WAF_REQUESTS, WAF_WEB_ACL, WAF_RULE, LAMBDA_REQUESTS, LAMBDA_ARM_GB_SECOND, DYNAMODB_WRU,
    DYNAMODB_RRU, DYNAMODB_STORAGE, DYNAMODB_PITR, LOGS_INGESTED, LOGS_STORED, CUSTOM_METRIC, ALARM_METRIC,
    DASHBOARD, XRAY_TRACES, SQS_REQUESTS, EVENTBRIDGE_EVENTS, KMS_KEY, KMS_REQUESTS, SECRET, S3_STANDARD, S3_PUT,
    S3_GET,
)  # fmt: skip
