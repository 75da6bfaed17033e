"""Hangar on one machine, without Docker: an API Gateway-like HTTP gateway in front of the real
handler modules, with an embedded moto server standing in for DynamoDB (and KMS, Secrets Manager,
SSM and API Gateway's key / usage-plan API).

Everything it serves comes from template.yaml (`local.template` reads it); nothing here repeats a
route, a table or a schedule. Run it with `python -m local` (see `local.__main__`).

Modules:
- `local.template`   template.yaml: loading, intrinsic functions, routes, authorizers, tables, ...
- `local.gateway`    the HTTP gateway: routing, authorizers and their cache, proxy events, admin routes
- `local.functions`  lazy import of handler modules by file path, and their invocation
- `local.limits`     the rate-limit hook (`LimitPolicy`) the gateway consults around the authorizer
- `local.schedules`  EventBridge-style schedules run on a timer or on demand
- `local.backend`    the embedded moto server
- `local.devtokens`  dev JWTs (`mint_dev_jwt`) and the dev API key
- `local.server`     start-up: moto, resources, environment, banner, serve, clean shutdown
- `local.testing`    starting `python -m local` as a subprocess and talking to it (the e2e fixture)
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: template.yaml, functions/, docs/ are found relative to it."""

__all__ = ["REPO_ROOT"]
