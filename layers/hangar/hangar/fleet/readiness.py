"""Readiness: may a self-hosted scan start now — for a target, on a runner?

ready = license active AND a free concurrent-job slot AND not over the runner limit
        AND the target's visibility is allowed (when a target is named)
        AND an eligible runner exists (the named one, when a runner is named).

An eligible runner is one whose status (hangar.fleet.liveness.runner_status: stale heartbeats read as
offline at once) is not offline and that has a free slot (currentJobs < configuredConcurrency).
`reasons` lists machine codes for every check that failed, in a fixed order.
"""

from __future__ import annotations

from hangar.core.errors import NotFound
from hangar.fleet import runners
from hangar.fleet.liveness import runner_status
from hangar.fleet.models.readiness import Readiness, ReadinessRunner, RunnersWithReadiness
from hangar.store import orgs
from hangar.store.orgs import Org
from hangar.store.runners import Runner
from hangar.store.targets import Target
from hangar.tenancy import licensing
from hangar.tenancy.targets import get_target, visibility_allowed

# Reason codes, in the order they are reported: the license's first (hangar.tenancy.licensing.scan_refusals).
VISIBILITY_NOT_ALLOWED = "visibility_not_allowed"
RUNNER_OFFLINE = "runner_offline"
RUNNER_BUSY = "runner_busy"
NO_ONLINE_RUNNER = "no_online_runner"
ALL_RUNNERS_BUSY = "all_runners_busy"


def free_slots(runner: Runner) -> int:
    return runner.configured_concurrency - runner.current_jobs


def readiness_runner(runner: Runner) -> ReadinessRunner:
    return ReadinessRunner(
        id=runner.runner_id,
        name=runner.name,
        status=runner_status(runner),
        configuredConcurrency=runner.configured_concurrency,
        currentJobs=runner.current_jobs,
    )


def evaluate(org: Org, fleet: list[Runner], target: Target | None = None, runner_id: str | None = None) -> Readiness:
    """Readiness from what has been read: the org item, all its runners, the named target if any."""
    license_ = org.license()
    reasons = licensing.scan_refusals(license_, org)

    visibility = target.visibility if target is not None else None
    visibility_ok = visibility is None or visibility_allowed(license_, visibility)
    if not visibility_ok:
        reasons.append(VISIBILITY_NOT_ALLOWED)

    online = [runner for runner in fleet if runner_status(runner) != "offline"]
    eligible = [runner for runner in online if free_slots(runner) > 0]
    selected: Runner | None
    if runner_id is not None:
        requested = next(runner for runner in fleet if runner.runner_id == runner_id)
        selected = requested if requested in eligible else None
        if selected is None:
            reasons.append(RUNNER_BUSY if requested in online else RUNNER_OFFLINE)
    else:
        # The most free slots wins; ties go to the first in runner-id order (the list's order).
        selected = max(eligible, key=free_slots, default=None)
        if selected is None:
            reasons.append(ALL_RUNNERS_BUSY if online else NO_ONLINE_RUNNER)
    runner_ok = selected is not None

    return Readiness(
        ready=not reasons,
        visibility=visibility,
        visibilityOk=visibility_ok,
        runnerOk=runner_ok,
        selectedRunnerId=selected.runner_id if selected is not None else None,
        license=licensing.license_summary(org),
        runners=[readiness_runner(runner) for runner in eligible],
        reasons=reasons,
    )


def get_readiness(org_id: str, target_id: str | None = None, runner_id: str | None = None) -> Readiness:
    """GET /v1/runners/readiness. A named target or runner that is not the tenant's is a 404 naming it."""
    target = get_target(org_id, target_id) if target_id is not None else None
    fleet = runners.list_all_runners(org_id)
    if runner_id is not None and not any(runner.runner_id == runner_id for runner in fleet):
        raise NotFound(f"Runner {runner_id} not found", field="runnerId")
    return evaluate(orgs.org_or_default(org_id), fleet, target, runner_id)


def list_runners_with_readiness(org_id: str, limit: int, cursor: str | None) -> tuple[RunnersWithReadiness, str | None]:
    """GET /v1/runners: a page of runners plus readiness over the whole fleet (which, bounded by the
    runner limit, is usually that same single page — then it is read once)."""
    page, next_cursor = runners.list_runners(org_id, limit, cursor)
    fleet = page if cursor is None and next_cursor is None else runners.list_all_runners(org_id)
    readiness = evaluate(orgs.org_or_default(org_id), fleet)
    return RunnersWithReadiness(runners=[runners.v1_view(runner) for runner in page], readiness=readiness), next_cursor
