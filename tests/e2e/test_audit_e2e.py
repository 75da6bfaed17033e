"""The audit log over real HTTP against local/: a user's changes listed newest first with their actor,
source IP and the request id their responses carried; paging, filters, isolation, scope, concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from local.testing import HttpResult, LocalApi, unique_org

CONCURRENT = 8


def audit_log(local_api: LocalApi, token: str, **query: str) -> list[dict[str, Any]]:
    """Every page of the tenant's audit log (with `query`'s filters), in the order the API lists them."""
    events: list[dict[str, Any]] = []
    cursor = ""
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        status, _, page = local_api.call("GET", f"/v1/audit-events?{urlencode(params)}", token=token)
        assert status == 200, page
        events.extend(page["events"])
        if page["nextCursor"] is None:
            return events
        cursor = page["nextCursor"]


def test_a_users_changes_are_listed_newest_first_with_who_where_and_which_request(
    local_api: LocalApi, org: str
) -> None:
    operator = local_api.jwt("operators", "admin:licenses", sub="ops@hangar")
    user = local_api.jwt(org, sub="alice@example.com")
    done: list[tuple[str, str, str, tuple[str, str]]] = []  # (action, target id, request id, actor)

    def change(action: str, method: str, path: str, target: Callable[[Any], str], **options: Any) -> Any:
        result = local_api.call(method, path, **options)
        assert result.status in (200, 201), (action, result.body)
        actor = ("operator", "ops@hangar") if options.get("token") == operator else ("jwt", "alice@example.com")
        done.append((action, target(result.body), result.headers["x-amzn-RequestId"], actor))
        local_api.advance_clock(1)  # each change at its own millisecond and more
        return result.body

    change("license.update", "PUT", f"/v1/orgs/{org}/license", lambda _: org, token=operator, json={"plan": "team"})
    runner = change("runner.create", "POST", "/api/runners", lambda b: b["data"]["_id"], token=user, json={"name": "a"})
    runner_id = runner["data"]["_id"]
    change("runner.update", "PUT", f"/api/runners/{runner_id}", lambda _: runner_id, token=user, json={"labels": ["x"]})
    target = change(
        "target.create",
        "POST",
        "/v1/targets",
        lambda b: b["id"],
        token=user,
        json={"name": "site", "url": "https://site.example", "visibility": "public"},
    )
    key = change(
        "api_key.create",
        "POST",
        "/v1/api-keys",
        lambda b: b["id"],
        token=user,
        json={"name": "ci", "scopes": ["jobs:manage"]},
    )
    # With the API key: the actor is the key (its id), never its value.
    result = local_api.call("POST", "/v1/jobs", api_key=key["token"], json={"type": "scan", "repositoryConfig": "c"})
    assert result.status == 201, result.body
    job_id = result.body["id"]
    done.append(("job.create", job_id, result.headers["x-amzn-RequestId"], ("api_key", key["id"])))
    local_api.advance_clock(1)
    change("job.cancel", "POST", f"/v1/jobs/{job_id}/cancel", lambda _: job_id, token=user)
    change("target.delete", "DELETE", f"/v1/targets/{target['id']}", lambda _: target["id"], token=user)
    enrollment = change(
        "enrollment_token.create",
        "POST",
        "/v1/runners/enrollment-tokens",
        lambda b: b["tokenPrefix"],
        token=user,
        json={},
    )
    registration = local_api.call("POST", "/v1/runners/register", json={"token": enrollment["token"]})
    assert registration.status == 201, registration.body
    registered = registration.body["runner"]["id"]
    done.append(("runner.register", registered, registration.headers["x-amzn-RequestId"], ("runner", registered)))
    local_api.advance_clock(1)
    change(
        "runner.regenerate_token", "POST", f"/api/runners/{runner_id}/regenerate-token", lambda _: runner_id, token=user
    )
    change("runner.mark_offline", "POST", f"/api/runners/{runner_id}/mark-offline", lambda _: runner_id, token=user)
    change("runner.delete", "DELETE", f"/api/runners/{runner_id}", lambda _: runner_id, token=user)
    change("api_key.delete", "DELETE", f"/v1/api-keys/{key['id']}", lambda _: key["id"], token=user)

    # Paged 4 at a time: every change once, newest first, as its response said.
    events = audit_log(local_api, user, limit="4")
    expected = [(action, target_id, request_id, actor) for action, target_id, request_id, actor in reversed(done)]
    assert [
        (e["action"], e["target"]["id"], e["requestId"], (e["actor"]["type"], e["actor"]["id"])) for e in events
    ] == (expected)
    assert all(event["sourceIp"] == "127.0.0.1" and event["orgId"] == org for event in events)
    assert [event["at"] for event in events] == sorted((event["at"] for event in events), reverse=True)
    assert len({event["id"] for event in events}) == len(events)
    text = str(events)
    assert key["token"] not in text and enrollment["token"] not in text and registration.body["token"] not in text

    # Filters: one action (paged through its index), from a time on, and both.
    assert [e["target"]["id"] for e in audit_log(local_api, user, action="runner.create", limit="1")] == [runner_id]
    since = events[3]["at"]
    assert audit_log(local_api, user, since=since) == events[:4]
    assert audit_log(local_api, user, since=since, action="runner.delete") == events[1:2]
    assert audit_log(local_api, user, since=since.replace("Z", "+00:00"), action="target.create") == []

    # Another tenant never sees them, through any filter; without audit:read: 403.
    stranger = local_api.jwt(unique_org())
    assert audit_log(local_api, stranger) == [] and audit_log(local_api, stranger, action="runner.create") == []
    no_scope = local_api.jwt(org, "runners:read runners:manage jobs:read jobs:manage keys:manage")
    status, _, body = local_api.call("GET", "/v1/audit-events", token=no_scope)
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body
    status, _, body = local_api.call("GET", "/v1/audit-events?since=last-tuesday", token=user)
    assert status == 400 and body["error"]["field"] == "since", body


def concurrently(count: int, request: Callable[[int], HttpResult]) -> list[HttpResult]:
    barrier = threading.Barrier(count)

    def at_once(index: int) -> HttpResult:
        barrier.wait(timeout=30)
        return request(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(at_once, range(count)))


def test_concurrent_changes_write_one_event_per_committed_change(local_api: LocalApi, org: str) -> None:
    """A free plan allows 3 targets: of 8 concurrent creations 3 commit, each with its one event; of 8
    registrations with one enrollment token 1 commits; of 8 cancels of one job 1 changes it."""
    user = local_api.jwt(org)
    created = concurrently(
        CONCURRENT,
        lambda i: local_api.call(
            "POST",
            "/v1/targets",
            token=user,
            json={"name": f"t{i}", "url": "https://t.example", "visibility": "public"},
        ),
    )
    assert sorted(result.status for result in created) == [201] * 3 + [403] * 5, [r.body for r in created]
    target_ids = sorted(result.body["id"] for result in created if result.status == 201)

    status, _, enrollment = local_api.call("POST", "/v1/runners/enrollment-tokens", token=user, json={})
    assert status == 201, enrollment
    registered = concurrently(
        CONCURRENT, lambda _: local_api.call("POST", "/v1/runners/register", json={"token": enrollment["token"]})
    )
    assert sorted(result.status for result in registered) == [201] + [401] * (CONCURRENT - 1)
    (runner_id,) = [result.body["runner"]["id"] for result in registered if result.status == 201]

    status, _, job = local_api.call("POST", "/v1/jobs", token=user, json={"type": "scan", "repositoryConfig": "c"})
    assert status == 201, job
    cancels = concurrently(CONCURRENT, lambda _: local_api.call("POST", f"/v1/jobs/{job['id']}/cancel", token=user))
    assert {result.status for result in cancels} == {200}

    events = audit_log(local_api, user)
    by_action: dict[str, list[str]] = {}
    for event in events:
        by_action.setdefault(event["action"], []).append(event["target"]["id"])
    assert sorted(by_action["target.create"]) == target_ids
    assert by_action["runner.register"] == [runner_id]
    assert by_action["job.cancel"] == [job["id"]] and by_action["job.create"] == [job["id"]]
    assert len(events) == 3 + 1 + 1 + 1 + 1  # targets, enrollment token, registration, job, cancel
