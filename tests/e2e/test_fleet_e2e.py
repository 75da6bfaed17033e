"""Seed 003's /v1 examples, licenses, targets and API keys over real HTTP against `python -m local`."""

from __future__ import annotations

from http_builders import dynamodb_client, set_license
from seed_shapes import SEED_READINESS_LICENSE_KEYS, SEED_V1_RUNNER_KEYS
from support import ALL_BUT_OPERATOR, READ_ONLY

from local.testing import LocalApi


def make_api_key(api: LocalApi, org: str, scopes: list[str]) -> str:
    creator = api.jwt(org, ALL_BUT_OPERATOR)
    result = api.call("POST", "/v1/api-keys", token=creator, json={"name": "ci", "scopes": scopes})
    assert result.status == 201, result.body
    assert result.body["token"].startswith("hgk_")
    return str(result.body["token"])


def bring_online(api: LocalApi, org: str, runner_id: str, runner_token: str) -> None:
    """A heartbeat through the API; where that route is not served yet, what it would store."""
    beat = api.call(
        "POST", "/api/runners/heartbeat", runner_token=runner_token, json={"status": "online", "version": "0.1.0"}
    )
    if beat.status == 200:
        return
    from hangar.store.runners import live_shard

    now = api.now()
    dynamodb = dynamodb_client(api.dynamodb_endpoint)
    table = next(name for name in dynamodb.list_tables()["TableNames"] if "Runners" in name)
    dynamodb.update_item(
        TableName=table,
        Key={"orgId": {"S": org}, "runnerId": {"S": runner_id}},
        UpdateExpression="SET #s = :online, lastHeartbeatEpoch = :now, lastHeartbeatAt = :iso, liveShard = :shard",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":online": {"S": "online"},
            ":now": {"N": str(int(now))},
            ":iso": {"S": "2026-05-03T09:15:32.000Z"},
            ":shard": {"S": live_shard(runner_id)},
        },
    )


def test_seed_003_list_and_readiness_with_an_api_key(local_api: LocalApi, org: str) -> None:
    set_license(local_api, org, plan="team")
    key = make_api_key(local_api, org, ["runners:read"])
    manager = local_api.jwt(org, ALL_BUT_OPERATOR)

    empty = local_api.call("GET", "/v1/runners", api_key=key)
    assert empty.status == 200, empty.body
    assert empty.body["runners"] == [] and empty.body["readiness"]["ready"] is False

    created = local_api.call("POST", "/api/runners", token=manager, json={"name": "prod-runner-1"})
    assert created.status == 201, created.body
    runner_id = created.body["data"]["_id"]
    bring_online(local_api, org, runner_id, created.body["data"]["token"])

    listed = local_api.call("GET", "/v1/runners", api_key=key)
    assert listed.status == 200, listed.body
    [runner] = listed.body["runners"]
    assert set(runner) >= SEED_V1_RUNNER_KEYS and runner["id"] == runner_id and runner["status"] == "online"
    readiness = listed.body["readiness"]
    assert readiness["ready"] is True and readiness["visibilityOk"] is True and readiness["runnerOk"] is True
    assert readiness["selectedRunnerId"] == runner_id
    assert readiness["license"]["plan"] == "team" and readiness["license"]["licenseState"] == "active"
    assert readiness["license"]["allowedTargetVisibilities"] == [
        "public",
        "staging_preview",
        "private_internal",
        "localhost",
    ]
    assert readiness["runners"][0]["id"] == runner_id and readiness["runners"][0]["name"] == "prod-runner-1"

    checked = local_api.call("GET", "/v1/runners/readiness", api_key=key)
    assert checked.status == 200, checked.body
    assert checked.body["ready"] is True and checked.body["selectedRunnerId"] == runner_id
    assert set(checked.body["license"]) >= SEED_READINESS_LICENSE_KEYS
    assert checked.body["runners"] == [
        {"id": runner_id, "name": "prod-runner-1", "status": "online", "configuredConcurrency": 1, "currentJobs": 0}
    ]

    target = local_api.call(
        "POST",
        "/v1/targets",
        token=manager,
        json={"name": "intranet", "url": "http://10.0.0.5", "visibility": "private_internal"},
    )
    assert target.status == 201, target.body
    with_target = local_api.call(
        "GET", f"/v1/runners/readiness?targetId={target.body['id']}&runnerId={runner_id}", api_key=key
    )
    assert with_target.status == 200, with_target.body
    assert with_target.body["visibility"] == "private_internal" and with_target.body["ready"] is True
    # Bearer hgk_ works the same as X-API-Key.
    assert local_api.call("GET", "/v1/runners/readiness", token=key).status == 200
    unknown = local_api.call("GET", "/v1/runners/readiness?runnerId=rnr_0000000000000000", api_key=key)
    assert unknown.status == 404 and unknown.body["error"]["field"] == "runnerId"


def test_put_license_needs_admin_licenses(local_api: LocalApi, org: str) -> None:
    everything_else = local_api.jwt(org, ALL_BUT_OPERATOR)
    refused = local_api.call("PUT", f"/v1/orgs/{org}/license", token=everything_else, json={"plan": "team"})
    assert refused.status == 403 and refused.body["error"]["code"] == "insufficient_scope"
    key = make_api_key(local_api, org, ALL_BUT_OPERATOR.split())
    assert local_api.call("PUT", f"/v1/orgs/{org}/license", api_key=key, json={"plan": "team"}).status == 403
    escalation = local_api.call(
        "POST", "/v1/api-keys", token=local_api.jwt(org), json={"name": "op", "scopes": ["admin:licenses"]}
    )
    assert escalation.status == 403
    license_ = set_license(local_api, org, plan="team", licenseState="suspended")
    assert license_["plan"] == "team" and license_["canStartSelfHostedScan"] is False
    seen = local_api.call("GET", "/v1/license", token=local_api.jwt(org, "jobs:read"))
    assert seen.status == 200 and seen.body["licenseState"] == "suspended"
    bad = local_api.call(
        "PUT", f"/v1/orgs/{org}/license", token=local_api.jwt("ops", "admin:licenses"), json={"runnerLimit": -1}
    )
    assert bad.status == 400 and bad.body["error"]["field"] == "runnerLimit"


def test_read_only_credentials_are_refused_on_every_manage_route(local_api: LocalApi, org: str) -> None:
    read_only_jwt = local_api.jwt(org, READ_ONLY)
    read_only_key = make_api_key(local_api, org, READ_ONLY.split())
    manage_routes = [
        ("POST", "/v1/targets", {"name": "t", "url": "https://a.example", "visibility": "public"}),
        ("DELETE", "/v1/targets/tgt_0123456789abcdef", None),
        ("POST", "/v1/api-keys", {"name": "k", "scopes": ["runners:read"]}),
        ("GET", "/v1/api-keys", None),
        ("DELETE", "/v1/api-keys/0123456789ab", None),
        ("PUT", f"/v1/orgs/{org}/license", {"plan": "team"}),
    ]
    for method, path, body in manage_routes:
        for credential in ({"token": read_only_jwt}, {"api_key": read_only_key}):
            result = local_api.call(method, path, json=body, **credential)
            assert result.status == 403, (method, path, result.body)
            assert result.body["error"]["code"] == "insufficient_scope"
    # What read scopes do allow.
    for path in ("/v1/runners", "/v1/runners/readiness", "/v1/license", "/v1/targets"):
        assert local_api.call("GET", path, api_key=read_only_key).status == 200, path


def test_api_key_lifecycle_over_http(local_api: LocalApi, org: str) -> None:
    manager = local_api.jwt(org, ALL_BUT_OPERATOR)
    key = make_api_key(local_api, org, ["runners:read"])
    assert local_api.call("GET", "/v1/runners", api_key=key).status == 200
    listed = local_api.call("GET", "/v1/api-keys", token=manager)
    assert listed.status == 200
    [entry] = listed.body["apiKeys"]
    assert entry["lastUsedAt"] is not None and key not in str(listed.body)
    deleted = local_api.call("DELETE", f"/v1/api-keys/{entry['id']}", token=manager)
    assert deleted.status == 200
    assert local_api.call("GET", "/v1/runners", api_key=key).status == 401
    other = local_api.call("DELETE", f"/v1/api-keys/{entry['id']}", token=local_api.jwt("someone-else", "keys:manage"))
    assert other.status == 404
