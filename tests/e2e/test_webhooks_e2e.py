"""Events and webhooks over real HTTP against `python -m local`: the table streams run the event processor
and the delivery queue the delivery function, as the template wires them; the clock is moved and
`POST /_local/deliveries/flush` attempts whatever is due, so nothing waits on wall-clock time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from http_builders import create_job, create_runner, heartbeat, poll, report
from webhook_receiver import Receiver, receiver

from local.testing import LocalApi, start_local_api

SCOPE = "webhooks:manage"
STALE_AFTER_SECONDS = 90


def token(api: LocalApi, org: str, scopes: str = SCOPE) -> str:
    """A week-long JWT: the day-long retry test moves its server's clock more than a day on."""
    return api.jwt(org, scopes, ttl=7 * 86400)


def create_webhook(api: LocalApi, org: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    result = api.call("POST", "/v1/webhooks", token=token(api, org), json={"url": url, "events": events or ["*"]})
    assert result.status == 201, result.body
    body: dict[str, Any] = result.body
    return body


def deliveries(api: LocalApi, org: str, webhook_id: str) -> list[dict[str, Any]]:
    result = api.call("GET", f"/v1/webhooks/{webhook_id}/deliveries", token=token(api, org))
    assert result.status == 200, result.body
    found: list[dict[str, Any]] = result.body["deliveries"]
    return found


def test_a_jobs_life_and_a_stale_runner_reach_the_receiver_signed(local_api: LocalApi, org: str) -> None:
    with receiver() as hooks:
        webhook = create_webhook(local_api, org, hooks.url)
        assert webhook["secret"].startswith("whsec_")
        runner = create_runner(local_api, org, "builder", ["linux"])
        runner_id, token = runner["_id"], runner["token"]
        heartbeat(local_api, token)
        job = create_job(local_api, org, labels=["linux"])
        claimed = poll(local_api, token)
        assert claimed is not None and claimed["_id"] == job["id"]
        report(local_api, token, job["id"], "running")
        report(local_api, token, job["id"], "completed", result={"findings": 0})
        local_api.flush_deliveries()
        job_events = [event for event in hooks.events() if event["type"].startswith("job.")]
        assert [event["type"] for event in job_events] == ["job.queued", "job.started", "job.completed"]
        assert all(event["data"]["id"] == job["id"] and event["orgId"] == org for event in job_events)
        assert job_events[-1]["data"]["status"] == "completed" and job_events[-1]["data"]["result"] == {"findings": 0}
        assert [e["type"] for e in hooks.events() if e["type"].startswith("runner.")] == [
            "runner.created",
            "runner.online",
        ]
        assert all(received.signature_valid(webhook["secret"]) for received in hooks.received)
        assert all(r.headers["hangar-event-id"] == r.event["id"] for r in hooks.received)
        assert all(r.headers["hangar-event-type"] == r.event["type"] for r in hooks.received)

        # The runner goes silent: the sweeper writes it offline, which is the event.
        local_api.advance_clock(STALE_AFTER_SECONDS + 30)
        local_api.run_schedule("SweeperFunction")
        local_api.flush_deliveries()
        offline = hooks.events("runner.offline")
        assert len(offline) == 1 and offline[0]["data"]["id"] == runner_id
        assert offline[0]["data"]["status"] == "offline"
        assert all(received.signature_valid(webhook["secret"]) for received in hooks.received)
        listed = deliveries(local_api, org, webhook["id"])
        assert len(listed) == len(hooks.received) and {d["status"] for d in listed} == {"succeeded"}
        assert webhook["secret"] not in str(listed)
        assert webhook["secret"] not in local_api.output()  # nor in any log line


def test_heartbeats_that_change_nothing_are_no_events(local_api: LocalApi, org: str) -> None:
    with receiver() as hooks:
        create_webhook(local_api, org, hooks.url, ["runner.online", "runner.offline"])
        token = create_runner(local_api, org, "steady", [])["token"]
        for _ in range(3):
            heartbeat(local_api, token)
        local_api.flush_deliveries()
        assert [event["type"] for event in hooks.events()] == ["runner.online"]


def _wait_for_attempts(api: LocalApi, org: str, webhook_id: str, hooks: Receiver, count: int) -> None:
    for _ in range(60):
        api.flush_deliveries()
        if len(hooks.received) >= count:
            return
        api.advance_clock(60)
    raise AssertionError(f"{len(hooks.received)} attempts, expected {count}: {deliveries(api, org, webhook_id)}")


def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(local_api: LocalApi, org: str) -> None:
    with receiver() as hooks:
        hooks.answers = [500, 500, 500]
        webhook = create_webhook(local_api, org, hooks.url, ["ping"])
        result = local_api.call("POST", f"/v1/webhooks/{webhook['id']}/test", token=token(local_api, org))
        assert result.status == 202, result.body
        _wait_for_attempts(local_api, org, webhook["id"], hooks, 4)
        assert len({r.headers["hangar-event-id"] for r in hooks.received}) == 1
        assert all(r.signature_valid(webhook["secret"]) for r in hooks.received)
        (delivery,) = deliveries(local_api, org, webhook["id"])
        assert delivery["status"] == "succeeded" and delivery["attempts"] == 4
        assert [a["statusCode"] for a in delivery["attemptHistory"]] == [500, 500, 500, 200]


@pytest.fixture(scope="module")
def own_api() -> Any:
    """A server of its own for the test that moves the clock a day on (the shared server's other tests
    mint JWTs that live a day)."""
    with start_local_api(timeout=60) as api:
        yield api


def test_a_day_of_failures_fails_the_delivery_and_redeliver_succeeds(own_api: LocalApi, org: str) -> None:
    local_api = own_api
    with receiver() as hooks:
        hooks.default = 503
        webhook = create_webhook(local_api, org, hooks.url, ["ping"])
        local_api.call("POST", f"/v1/webhooks/{webhook['id']}/test", token=token(local_api, org))
        for _ in range(40):
            local_api.flush_deliveries()
            (delivery,) = deliveries(local_api, org, webhook["id"])
            if delivery["status"] != "pending":
                break
            local_api.advance_clock(3600)
        assert delivery["status"] == "failed" and delivery["attempts"] >= 8, delivery
        assert delivery["lastStatusCode"] == 503 and delivery["nextAttemptAt"] is None
        assert len(hooks.received) == delivery["attempts"]

        hooks.default = 200
        path = f"/v1/webhooks/{webhook['id']}/deliveries/{delivery['id']}/redeliver"
        result = local_api.call("POST", path, token=token(local_api, org))
        assert result.status == 202, result.body
        local_api.flush_deliveries()
        again = next(d for d in deliveries(local_api, org, webhook["id"]) if d["id"] == result.body["id"])
        assert again["status"] == "succeeded" and again["eventId"] == delivery["eventId"]
        assert hooks.received[-1].headers["hangar-event-id"] == delivery["eventId"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "ftp://example.com/hooks",
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://user:pass@example.com/hooks",
    ],
)
def test_webhook_urls_outside_the_rules_are_refused_at_creation(local_api: LocalApi, org: str, url: str) -> None:
    result = local_api.call("POST", "/v1/webhooks", token=token(local_api, org), json={"url": url, "events": ["*"]})
    assert result.status == 400, result.body
    assert result.body["error"]["code"] == "webhook_url_refused" and result.body["error"]["field"] == "url"


def test_a_redirect_is_not_followed(local_api: LocalApi, org: str) -> None:
    with receiver() as hooks, receiver() as elsewhere:
        hooks.default, hooks.location = 302, elsewhere.url
        webhook = create_webhook(local_api, org, hooks.url, ["ping"])
        local_api.call("POST", f"/v1/webhooks/{webhook['id']}/test", token=token(local_api, org))
        local_api.flush_deliveries()
        (delivery,) = deliveries(local_api, org, webhook["id"])
        assert delivery["status"] == "pending" and delivery["lastStatusCode"] == 302
        assert "Redirects are not followed" in delivery["lastError"]
        assert elsewhere.received == []


def _call_until_admitted(api: LocalApi, *args: Any, **kwargs: Any) -> Any:
    """A call retried while rate limited (429 and Retry-After): the limits are not what this test is about."""
    while True:
        result = api.call(*args, **kwargs)
        if result.status != 429:
            return result
        time.sleep(float(result.headers.get("Retry-After") or 1))


def _unsucceeded(api: LocalApi, org: str, webhook_id: str) -> list[dict[str, Any]]:
    """The webhook's deliveries that did not succeed (every page), for a failure's message."""
    found, cursor = [], None
    while True:
        query = f"?limit=200{'&cursor=' + cursor if cursor else ''}"
        page = api.call("GET", f"/v1/webhooks/{webhook_id}/deliveries{query}", token=token(api, org)).body
        found += [delivery for delivery in page["deliveries"] if delivery["status"] != "succeeded"]
        cursor = page["nextCursor"]
        if not cursor:
            return found


# Once per make test, on AWS's own engine: its subject is exactly-once events under concurrent
# conditional writes, which DynamoDB Local runs as DynamoDB does, and it is make test's longest test
# (about 2.5 minutes on moto, where local/ serves every call one at a time). The moto path of the event
# pipeline keeps its own e2e tests above (a job's life, a stale runner, retries, redelivery).
@pytest.mark.dynamodb_local_only
def test_two_hundred_concurrent_jobs_give_exactly_the_expected_events(local_api: LocalApi, org: str) -> None:
    jobs_count, runner_count = 200, 10
    operator = local_api.jwt("hangar-operators", "admin:licenses")
    assert local_api.call("PUT", f"/v1/orgs/{org}/license", token=operator, json={"plan": "enterprise"}).status == 200
    with receiver() as everything, receiver() as completions:
        webhook_ids = [
            create_webhook(local_api, org, everything.url, ["*"])["id"],
            create_webhook(local_api, org, completions.url, ["job.completed"])["id"],
        ]
        user = token(local_api, org, "runners:manage jobs:manage jobs:read")
        runners = []
        for index in range(runner_count):
            created = _call_until_admitted(
                local_api, "POST", "/api/runners", token=user, json={"name": f"r{index}", "labels": ["linux"]}
            )
            assert created.status == 201, created.body
            runners.append((created.body["data"]["_id"], created.body["data"]["token"]))
        body = {"type": "scan", "repositoryConfig": "abc", "repositoryName": "acme/infra", "branch": "main"}

        def create(_: int) -> str:
            result = _call_until_admitted(local_api, "POST", "/v1/jobs", token=user, json={**body, "labels": ["linux"]})
            assert result.status == 201, result.body
            job_id: str = result.body["id"]
            return job_id

        done: set[str] = set()
        lock = threading.Lock()

        def run(runner_token: str) -> None:
            def heartbeat() -> float:
                online = {"status": "online"}
                path = "/api/runners/heartbeat"
                beat = _call_until_admitted(local_api, "POST", path, runner_token=runner_token, json=online)
                assert beat.status == 200
                return time.monotonic()

            # Every 30 s, as the agent does: a runner silent past the stale cut-off (90 s) claims nothing,
            # and a loaded machine can take longer than that over the 200 jobs.
            last_heartbeat = heartbeat()
            idle = 0
            while idle < 40:
                with lock:
                    if len(done) >= jobs_count:
                        return
                if time.monotonic() - last_heartbeat >= 30:
                    last_heartbeat = heartbeat()
                polled = _call_until_admitted(
                    local_api, "POST", "/api/runners/jobs", runner_token=runner_token, json={}
                )
                job = polled.body["data"]["job"] if polled.status == 200 else None
                if job is None:
                    idle += 1
                    time.sleep(0.5)
                    continue
                for status in ("running", "completed"):
                    report_body = {"jobId": job["_id"], "status": status}
                    reported = _call_until_admitted(
                        local_api, "POST", "/api/runners/jobs/status", runner_token=runner_token, json=report_body
                    )
                    assert reported.status == 200, reported.body
                with lock:
                    done.add(job["_id"])

        with ThreadPoolExecutor(max_workers=runner_count) as pool:
            job_ids = set(pool.map(create, range(jobs_count)))
            list(pool.map(run, [runner_token for _, runner_token in runners]))
        assert done == job_ids and len(job_ids) == jobs_count
        final = [_call_until_admitted(local_api, "GET", f"/v1/jobs/{job_id}", token=user).body for job_id in job_ids]
        completed_ids = {job["id"] for job in final if job["status"] == "completed"}
        assert completed_ids == job_ids, sorted(job["status"] for job in final)
        expected = {("job.queued", job_id) for job_id in job_ids}
        expected |= {("job.started", job["id"]) for job in final if job["startedAt"]}
        expected |= {("job.completed", job_id) for job_id in completed_ids}
        expected |= {(kind, runner_id) for runner_id, _ in runners for kind in ("runner.created", "runner.online")}
        for _ in range(6):  # an attempt a loaded machine made fail is retried: bring its retry forward
            local_api.flush_deliveries()
            if {(e["type"], e["data"]["id"]) for e in everything.events()} >= expected:
                break
            local_api.advance_clock(900)

        def distinct(hooks: Receiver) -> dict[str, tuple[str, str]]:
            """Event id -> (type, object id); a repeated id must be the same event (a retry)."""
            seen: dict[str, tuple[str, str]] = {}
            for event in hooks.events():
                identity = (event["type"], event["data"]["id"])
                assert seen.setdefault(event["id"], identity) == identity
            return seen

        all_events = distinct(everything)
        missing = expected - set(all_events.values())
        assert not missing, (missing, _unsucceeded(local_api, org, webhook_ids[0]))
        assert sorted(all_events.values()) == sorted(expected)  # each exactly once, under one id
        completed = distinct(completions)
        assert sorted(completed.values()) == sorted(("job.completed", job_id) for job_id in completed_ids)
        assert set(completed) <= set(all_events)  # the same event has the same id for every webhook
