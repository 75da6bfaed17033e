"""Runner management handlers in-process against moto tables built from template.yaml (seed 000)."""

from __future__ import annotations

from support import AwsStack, invoke, unique_org, user_event


def create(org: str, name: str = "production-runner", labels: list[str] | None = None) -> dict:
    status, body, _ = invoke(
        "CreateRunner", user_event("CreateRunner", org, body={"name": name, "labels": labels or []})
    )
    assert status == 201, body
    return body["data"]


def test_create_returns_token_once_and_reads_never_show_it(aws: AwsStack) -> None:
    org = unique_org()
    created = create(org, labels=["linux", "x64"])
    assert set(created) >= {"_id", "name", "token", "status", "labels"}
    assert created["status"] == "offline" and created["token"].startswith("hgr_")
    status, body, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": created["_id"]}))
    assert status == 200 and body["success"] is True
    assert "token" not in body["data"] and created["token"] not in str(body)
    assert body["data"]["labels"] == ["linux", "x64"]
    raw = str(aws.scan_all())
    assert created["token"] not in raw


def test_fixture_events_work_as_shipped(aws: AwsStack) -> None:
    from support import load_event

    status, body, _ = invoke("CreateRunner", load_event("CreateRunner"))
    assert status == 201, body
    status, body, _ = invoke("ListRunners", load_event("ListRunners"))
    assert status == 200 and len(body["data"]) == 1 and body["nextCursor"] is None


def test_other_tenant_gets_404(aws: AwsStack) -> None:
    created = create(unique_org())
    other = unique_org()
    for logical_id, body in [
        ("GetRunner", ...),
        ("UpdateRunner", {"name": "x"}),
        ("DeleteRunner", ...),
        ("MarkRunnerOffline", ...),
    ]:
        status, response, _ = invoke(
            logical_id, user_event(logical_id, other, body=body, path_params={"runnerId": created["_id"]})
        )
        assert status == 404, (logical_id, response)
        assert response["success"] is False and response["error"]["code"] == "not_found"


def test_bad_input_names_the_field(aws: AwsStack) -> None:
    org = unique_org()
    cases = [
        ("{not json", 400, "body"),
        ({"labels": ["a"]}, 400, "name"),
        ({"name": ""}, 400, "name"),
        ({"name": "x" * 101}, 400, "name"),
        ({"name": "ok", "labels": ["bad label"]}, 400, "labels.0"),
        ({"name": "ok", "labels": ["a"] * 51}, 400, "labels"),
        ({"name": "ok", "colour": "red"}, 400, "colour"),
        ([1, 2], 400, "body"),
        (None, 400, "body"),
        ({"name": "ok", "pad": "x" * (65 * 1024)}, 413, "body"),
    ]
    for body, expected, field in cases:
        status, response, _ = invoke("CreateRunner", user_event("CreateRunner", org, body=body))
        assert status == expected, (body if not isinstance(body, dict) or "pad" not in body else "big", response)
        assert response["error"]["field"] == field, response


def test_runner_limit_of_free_plan(aws: AwsStack) -> None:
    org = unique_org()
    create(org)
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, body={"name": "second"}))
    assert status == 403 and body["error"]["code"] == "runner_limit_reached"


def test_scopes(aws: AwsStack) -> None:
    org = unique_org()
    created = create(org)
    status, body, _ = invoke("CreateRunner", user_event("CreateRunner", org, scopes="runners:read", body={"name": "n"}))
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, _, _ = invoke("ListRunners", user_event("ListRunners", org, scopes="runners:manage"))
    assert status == 403
    status, _, _ = invoke(
        "GetRunner", user_event("GetRunner", org, scopes="runners:read", path_params={"runnerId": created["_id"]})
    )
    assert status == 200


def test_update_delete_and_mark_offline(aws: AwsStack) -> None:
    org = unique_org()
    created = create(org)
    rid = {"runnerId": created["_id"]}
    status, body, _ = invoke(
        "UpdateRunner",
        user_event("UpdateRunner", org, path_params=rid, body={"name": "renamed", "labels": ["gpu", "gpu"]}),
    )
    assert status == 200 and body["data"]["name"] == "renamed" and body["data"]["labels"] == ["gpu"]
    status, body, _ = invoke("MarkRunnerOffline", user_event("MarkRunnerOffline", org, path_params=rid))
    assert status == 200 and body["data"]["status"] == "offline"
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params=rid))
    assert status == 200
    status, _, _ = invoke("GetRunner", user_event("GetRunner", org, path_params=rid))
    assert status == 404
    assert not [i for i in aws.scan_all() if i.get("kind", {}).get("S") == "runner"]
    # The slot is free again: the free plan's one runner can be created anew.
    create(org)
