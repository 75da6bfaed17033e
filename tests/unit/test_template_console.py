"""template.yaml's console hosting (S3 + CloudFront) and CORS: what the console's security rests on."""

from __future__ import annotations

import re
from typing import Any

from hangar.api import http
from support import template

from local.site import CONSOLE_CSP

RESOURCES = template()["Resources"]
CONSOLE_ORIGIN = {
    "Fn::If": ["HasConsoleOrigin", {"Ref": "ConsoleOrigin"}, {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}]
}
QUOTED_CONSOLE_ORIGIN = {
    "Fn::If": [
        "HasConsoleOrigin",
        {"Fn::Sub": "'${ConsoleOrigin}'"},
        {"Fn::Sub": "'https://${ConsoleDistribution.DomainName}'"},
    ]
}


def _props(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[logical_id]["Properties"]
    return properties


def test_handlers_the_preflight_and_the_gateway_name_one_and_the_same_origin() -> None:
    assert template()["Globals"]["Function"]["Environment"]["Variables"]["CORS_ALLOWED_ORIGIN"] == CONSOLE_ORIGIN
    api = _props("HangarApi")
    assert api["Cors"]["AllowOrigin"] == QUOTED_CONSOLE_ORIGIN
    responses = api["GatewayResponses"]
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response_type, response in responses.items():
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == QUOTED_CONSOLE_ORIGIN, response_type
        exposed = set(headers["Access-Control-Expose-Headers"].strip("'").split(","))
        assert exposed == set(http.CORS_EXPOSED_HEADERS), response_type


def test_the_preflight_allows_every_header_the_console_sends_and_needs_no_credential() -> None:
    api = _props("HangarApi")
    allowed = {name.lower() for name in api["Cors"]["AllowHeaders"].strip("'").split(",")}
    assert {"authorization", "x-api-key", "content-type"} <= allowed
    assert {name.lower() for name in http.CORS_REQUEST_HEADERS} <= allowed
    assert api["Auth"]["AddDefaultAuthorizerToCorsPreflight"] is False
    assert api["Auth"]["AddApiKeyRequiredToCorsPreflight"] is False
    assert "AllowCredentials" not in api["Cors"]  # headers carry the credential, never cookies


def test_the_console_bucket_is_private_encrypted_and_refuses_plain_http() -> None:
    bucket = _props("ConsoleBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    statements = _props("ConsoleBucketPolicy")["PolicyDocument"]["Statement"]
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and deny["Action"] == "s3:*"
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    # Only CloudFront, and only for this distribution (origin access control), may read.
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert "${ConsoleDistribution}" in allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]


def test_cloudfront_reads_the_bucket_through_origin_access_control_over_https_only() -> None:
    config = _props("ConsoleDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    oac = _props("ConsoleOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["SigningBehavior"], oac["OriginAccessControlOriginType"]) == ("always", "s3")
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "ConsoleResponseHeadersPolicy"}
    assert config["DefaultRootObject"] == "index.html"
    assert template()["Outputs"]["ConsoleUrl"]["Value"] == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}


def _directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in (p.strip() for p in policy.split(";")) if d}


def test_the_deployed_headers_are_make_runs_with_the_api_added_to_connect_src() -> None:
    security = _props("ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    deployed = _directives(security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"][0])
    local = _directives(CONSOLE_CSP)
    assert "unsafe-inline" not in str(deployed) and "unsafe-eval" not in str(deployed)
    assert deployed["frame-ancestors"] == "'none'"
    assert {k: v for k, v in deployed.items() if k != "connect-src"} == {
        k: v for k, v in local.items() if k != "connect-src"
    }
    assert re.fullmatch(
        r"'self' https://\*\.execute-api\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}\$\{CustomApiOrigin\}",
        deployed["connect-src"],
    )
    assert all(value["Override"] is True for value in security.values())
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert "ContentTypeOptions" in security
