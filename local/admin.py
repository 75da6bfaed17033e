"""Local-only routes under `/_local/` (never in the template, never in AWS):

- `GET /_local/health`
- `GET|POST /_local/clock`: the local clock; `{"advanceSeconds": n}` moves it forward (handlers,
  authorizer cache and rate-limit windows move together)
- `POST /_local/schedules/<FunctionLogicalId>`: run a scheduled function once, now; its result
- `POST /_local/authorizer-cache/flush`
- `GET /_local/routes`
- `POST /_local/deliveries/flush`: poll the tables' streams and the queues until nothing is due now (the
  event processor, then webhook deliveries due at the local clock); how many records were handled
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from local.gateway import Gateway, HttpRequest, HttpResponse, json_response
from local.template import ScheduleSpec


class Admin:
    def __init__(
        self,
        gateway: Gateway,
        schedules: Mapping[str, ScheduleSpec],
        run_schedule: Callable[[ScheduleSpec], Any],
        flush: Callable[[], int] = lambda: 0,
    ) -> None:
        self.gateway = gateway
        self.schedules = dict(schedules)
        self.run_schedule = run_schedule
        self.flush = flush

    def handle(self, request: HttpRequest, request_id: str) -> HttpResponse:
        path, method = request.raw_path.rstrip("/"), request.method
        if (method, path) in (("GET", "/_local/health"), ("HEAD", "/_local/health")):
            return json_response(200, {"ok": True}, request_id)
        if path == "/_local/clock" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    seconds = float(json.loads(request.body or b"{}").get("advanceSeconds", 0))
                except (ValueError, TypeError, AttributeError):
                    return json_response(400, {"message": 'body must be {"advanceSeconds": <number>}'}, request_id)
                if seconds < 0:
                    return json_response(400, {"message": "the clock only moves forward"}, request_id)
                self.gateway.advance_clock(seconds)
            return json_response(200, {"now": self.gateway.now()}, request_id)
        if (method, path) == ("POST", "/_local/authorizer-cache/flush"):
            return json_response(200, {"flushed": self.gateway.authorizers.flush()}, request_id)
        if (method, path) == ("GET", "/_local/routes"):
            routes = [
                {"method": r.method, "path": r.path, "function": r.function_id, "authorizer": r.authorizer}
                for r in self.gateway.routes
            ]
            return json_response(200, {"routes": routes}, request_id)
        if (method, path) == ("POST", "/_local/deliveries/flush"):
            try:
                return json_response(200, {"handled": self.flush()}, request_id)
            except Exception as error:  # the sources printed what failed
                return json_response(500, {"message": f"{type(error).__name__}: {error}"}, request_id)
        if method == "POST" and path.startswith("/_local/schedules/"):
            schedule = self.schedules.get(unquote(path.rsplit("/", 1)[1]))
            if schedule is None:
                return json_response(404, {"message": f"no scheduled function {path.rsplit('/', 1)[1]!r}"}, request_id)
            try:
                return json_response(200, self.run_schedule(schedule), request_id)
            except Exception as error:  # the run printed its traceback
                return json_response(500, {"message": f"{type(error).__name__}: {error}"}, request_id)
        return json_response(404, {"message": f"no local admin route {method} {path}"}, request_id)
