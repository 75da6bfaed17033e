"""A job the real agent runs (`hangar-agent run` as a subprocess) reaches a webhook receiver on 127.0.0.1
as job.queued, job.started and job.completed, each signed with the secret the API showed once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents import AgentProcess, agent_job, register, wait_for_jobs
from test_webhooks_e2e import create_webhook
from webhook_receiver import receiver

from local.testing import LocalApi, unique_org


def test_a_job_the_agent_runs_reaches_the_receiver_signed(
    fast_api: LocalApi, tmp_path: Path, agents: Callable[..., AgentProcess]
) -> None:
    api, org = fast_api, unique_org("hooks")
    with receiver() as hooks:
        webhook = create_webhook(api, org, hooks.url, ["runner.online", "job.queued", "job.started", "job.completed"])
        registered = register(api, org, tmp_path, "hooked-01")
        agent = agents(registered)
        job_id = agent_job(api, org, {"echo": "hello"})
        (job,) = wait_for_jobs(api, org, [job_id], ("completed",), 120, agent)
        api.flush_deliveries()
        job_events = [event for event in hooks.events() if event["data"].get("id") == job_id]
        assert [event["type"] for event in job_events] == ["job.queued", "job.started", "job.completed"]
        assert job_events[-1]["data"]["result"] == job["result"] and job["result"]["echo"] == "hello"
        online = hooks.events("runner.online")
        assert [event["data"]["id"] for event in online] == [registered.runner_id]
        assert all(received.signature_valid(webhook["secret"]) for received in hooks.received)
        assert webhook["secret"] not in api.output()
