"""Hangar on one machine, without Docker: an API Gateway-like HTTP gateway in front of the real
handler modules, with an embedded moto server standing in for DynamoDB (and KMS, Secrets Manager and
API Gateway's key / usage-plan API), or an external DynamoDB (HANGAR_DYNAMODB_ENDPOINT).

Everything it serves comes from template.yaml (`local.template` reads it); nothing here repeats a
route, a table or a schedule. Run it with `python -m local` (see `local.__main__`).

Modules:
- `local.template`    template.yaml (a package): reading, intrinsics, functions, the API, events, tables
- `local.provision`   the template's resources in the embedded backend (or an external DynamoDB)
- `local.routing`     request -> template route
- `local.authorizers` the Lambda authorizers and their result cache
- `local.limits`      the rate limits, consulted around the authorizer: WAF rules, then usage plans
- `local.waf`         the template's WAF rate-based rules
- `local.usage_plans` the template's usage plans, and which plan a key is in
- `local.outcomes`    what the checks see of a request and decide (grant, refusal)
- `local.gateway`     API Gateway for one request: routing, limits, authorizer, proxy event, responses
- `local.functions`   lazy import of handler modules by file path, and their invocation
- `local.schedules`   EventBridge-style schedules on a timer
- `local.admin`       the local-only `/_local/...` routes
- `local.site`        `/`, `/docs`, `/openapi.json`, `/console/`
- `local.http`        waitress, sockets, WSGI <-> gateway requests
- `local.backend`     the embedded moto server (a child process)
- `local.logs`        what `make run` prints
- `local.devtokens`   dev JWTs, the dev API key, which JWTs are accepted
- `local.server`      start-up and shutdown
- `local.openapi`     docs/openapi.json from the handlers
- `local.testing`     starting `python -m local` (and DynamoDB Local) from tests
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: template.yaml, functions/, docs/ are found relative to it."""

__all__ = ["REPO_ROOT"]
