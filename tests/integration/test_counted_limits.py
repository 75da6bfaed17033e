"""Per-tenant limits counted in DynamoDB (hangar/tenancy/limits.py): enrollment-token and API-key creation.

The 429 comes before any write: the refused request leaves no token behind, and another tenant is
not affected; an hour later the tenant may create again.
"""

from __future__ import annotations

from hangar.core import clock
from hangar.tenancy import limits
from support import AwsStack, invoke, unique_org, user_event


def _start_of_an_hour() -> None:
    """Fixed windows are aligned to the hour: start well inside one so a test never straddles two."""
    if clock.now() % limits.HOUR > limits.HOUR - 120:
        clock.advance(limits.HOUR - clock.now() % limits.HOUR + 1)


def test_enrollment_tokens_per_tenant_per_hour(aws: AwsStack) -> None:
    _start_of_an_hour()
    org, other = unique_org(), unique_org()
    for _ in range(limits.ENROLLMENT_TOKENS_PER_HOUR):
        status, body, _ = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", org, body={}))
        assert status == 201, body
    tokens_before = len([item for item in aws.scan_all() if item.get("kind", {}).get("S") == "enrollment"])
    status, body, headers = invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", org, body={}))
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert 0 < int(headers["Retry-After"]) <= limits.HOUR
    assert len([item for item in aws.scan_all() if item.get("kind", {}).get("S") == "enrollment"]) == tokens_before
    assert invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", other, body={}))[0] == 201
    clock.advance(limits.HOUR)
    assert invoke("CreateEnrollmentToken", user_event("CreateEnrollmentToken", org, body={}))[0] == 201


def test_api_keys_per_tenant_per_hour(aws: AwsStack) -> None:
    _start_of_an_hour()
    org, other = unique_org(), unique_org()
    body = {"name": "ci", "scopes": ["runners:read"]}
    for _ in range(limits.API_KEYS_PER_HOUR):
        status, created, _ = invoke("CreateApiKey", user_event("CreateApiKey", org, body=body))
        assert status == 201, created
    status, refused, headers = invoke("CreateApiKey", user_event("CreateApiKey", org, body=body))
    assert status == 429 and refused["error"]["code"] == "rate_limited", refused
    assert 0 < int(headers["Retry-After"]) <= limits.HOUR
    listed = invoke("ListApiKeys", user_event("ListApiKeys", org, query={"limit": "200"}))[1]
    assert len(listed["apiKeys"]) == limits.API_KEYS_PER_HOUR  # the refused request stored nothing
    assert invoke("CreateApiKey", user_event("CreateApiKey", other, body=body))[0] == 201
    clock.advance(limits.HOUR)
    assert invoke("CreateApiKey", user_event("CreateApiKey", org, body=body))[0] == 201
