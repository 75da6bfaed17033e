"""GET /api/runners/me in-process: the calling runner in the /api dialect, from its runner token alone.

Scope-free (the runner token is the credential and names the runner), never another runner's data, and a
regenerated or deleted runner's old token refused although the authorizer's cached Allow would pass it."""

from __future__ import annotations

from functools import partial
from typing import Any

import builders
from support import AwsStack, invoke, runner_event, unique_org, user_event

# Every runner here is a linux runner.
create_runner = partial(builders.create_runner, labels=["linux"])


def me(org: str, runner_id: str, token_version: int = 1, **changes: Any) -> tuple[int, Any]:
    event = runner_event("GetOwnRunner", org, runner_id, token_version)
    event.update(changes)
    status, body, _ = invoke("GetOwnRunner", event)
    return status, body


def test_a_runner_reads_itself_as_get_runner_shows_it(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, "me-runner")
    status, body = me(org, runner["_id"])
    assert status == 200, body
    assert body["success"] is True and body["data"]["_id"] == runner["_id"]
    assert body["data"]["status"] == "offline" and body["data"]["lastHeartbeat"] is None
    status, _, _ = invoke(
        "Heartbeat", runner_event("Heartbeat", org, runner["_id"], body={"status": "online", "version": "9.9.9"})
    )
    assert status == 200
    status, body = me(org, runner["_id"])
    assert status == 200 and body["data"]["status"] == "online" and body["data"]["version"] == "9.9.9"
    # Exactly the user route's view of the same runner.
    status, shown, _ = invoke("GetRunner", user_event("GetRunner", org, path_params={"runnerId": runner["_id"]}))
    assert status == 200 and shown["data"] == body["data"]
    assert "token" not in body["data"] and "setupToken" not in str(body)


def test_a_runner_never_sees_another_runner(aws: AwsStack) -> None:
    org, other_org = unique_org(), unique_org()
    mine = create_runner(org, "mine")
    neighbour = create_runner(other_org, "theirs")
    status, body = me(org, mine["_id"])
    assert status == 200 and body["data"]["name"] == "mine"
    # The route takes no id: whatever a request adds, the answer is the token's own runner.
    status, body = me(
        org,
        mine["_id"],
        queryStringParameters={"runnerId": neighbour["_id"]},
        pathParameters={"runnerId": neighbour["_id"]},
    )
    assert status == 200 and body["data"]["_id"] == mine["_id"]
    # A runner id is looked up in the token's own tenant only: another tenant's runner does not exist there.
    status, body = me(org, neighbour["_id"])
    assert status == 401 and body["success"] is False, body
    assert "theirs" not in str(body)


def test_a_regenerated_or_deleted_runners_old_token_is_refused(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, "rotating")
    status, _, _ = invoke(
        "RegenerateRunnerToken", user_event("RegenerateRunnerToken", org, path_params={"runnerId": runner["_id"]})
    )
    assert status == 200
    # The authorizer's cached answer still carries version 1: the handler refuses it.
    status, body = me(org, runner["_id"], token_version=1)
    assert status == 401, body
    assert body["error"]["code"] == "token_regenerated", body
    status, body = me(org, runner["_id"], token_version=2)
    assert status == 200, body
    status, _, _ = invoke("DeleteRunner", user_event("DeleteRunner", org, path_params={"runnerId": runner["_id"]}))
    assert status in (200, 204)
    status, body = me(org, runner["_id"], token_version=2)
    assert status == 401, body
    assert body["error"]["code"] == "runner_deleted", body


def test_a_user_principal_or_none_is_refused(aws: AwsStack) -> None:
    org = unique_org()
    runner = create_runner(org, "r")
    event = runner_event("GetOwnRunner", org, runner["_id"])
    # A user's context (the route is runner-only, whatever scopes the user holds).
    event["requestContext"]["authorizer"] = user_event("GetRunner", org)["requestContext"]["authorizer"]
    status, body, _ = invoke("GetOwnRunner", event)
    assert status == 401 and body["success"] is False, body
    event["requestContext"]["authorizer"] = {}
    status, body, _ = invoke("GetOwnRunner", event)
    assert status == 401, body


def test_bad_input_is_ignored_not_a_5xx(aws: AwsStack) -> None:
    """The route reads no input: a body (of any type) or a bogus query changes nothing and fails nothing."""
    org = unique_org()
    runner = create_runner(org, "r")
    for body in ("not json", '{"runnerId": 1}', "\u0000\uffff"):
        status, answer = me(org, runner["_id"], body=body, queryStringParameters={"x": "\u0000"})
        assert status == 200 and answer["data"]["_id"] == runner["_id"], (body, status, answer)
