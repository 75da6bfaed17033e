"""Two invocations resolved at the same time in one process (local/ serves requests on threads, one
function instance each) each see their own event: Powertools keeps the event being resolved on the
BaseRouter class, so without hangar.api.http's per-thread copy one request read another's principal —
a runner was handed the job another runner had claimed."""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools.event_handler import Response
from hangar.api.http import api_app, lambda_handler

from tests.support import FakeLambdaContext, runner_event


def _app_whose_route_waits(inside: threading.Barrier) -> Any:
    app = api_app()

    @app.post("/api/runners/jobs")
    def poll_job() -> Response[str]:
        before = app.runner().runner_id
        inside.wait(timeout=10)  # both invocations are now inside their routes
        inside.wait(timeout=10)  # ... and both have been resolved (the second one last)
        return app.ok({"before": before, "after": app.runner().runner_id, "context": app.lambda_context.aws_request_id})

    return lambda_handler(app)


def test_concurrent_invocations_each_see_their_own_event_and_context() -> None:
    inside = threading.Barrier(2)
    handlers = [_app_whose_route_waits(inside) for _ in range(2)]  # two function instances
    results: dict[str, Any] = {}

    def invoke(index: int) -> None:
        event = runner_event("PollJob", "org-one", f"rnr_{index}", body={})
        context = FakeLambdaContext()
        context.aws_request_id = f"request-{index}"
        results[f"rnr_{index}"] = handlers[index](event, context)

    threads = [threading.Thread(target=invoke, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for index in range(2):
        response = results[f"rnr_{index}"]
        assert response["statusCode"] == 200, response
        data = json.loads(response["body"])["data"]
        assert data == {"before": f"rnr_{index}", "after": f"rnr_{index}", "context": f"request-{index}"}
