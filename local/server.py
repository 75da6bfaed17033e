"""Start-up of the local stack: moto, the template's resources, the functions' environment, the
gateway, the schedules and the banner; and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from local import REPO_ROOT
from local.backend import SerialMotoServer
from local.devtokens import (
    ALL_SCOPES,
    LOCAL_JWT_AUDIENCE,
    LOCAL_JWT_ISSUER,
    local_jwt_secret,
    mint_dev_api_key,
    mint_dev_jwt,
)
from local.template import (
    REGION,
    api_settings,
    authorizers,
    function_environment,
    functions,
    gateway_responses,
    load_template,
    provision,
    routes,
    schedules,
)

LOCAL_TOKEN_PEPPER = "hangar-local-pepper-not-for-production"
READY_LINE = "Hangar local API ready on {url}"
"""Printed last at start-up; tests wait for it (`local.testing`)."""

# Variables that could send a local handler to real AWS, or to another endpoint than the local one.
_AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def aws_environment(endpoint: str) -> dict[str, str]:
    """What points every AWS SDK call of this process at the local backend."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def local_overrides(api_url: str, endpoint: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The local values that replace the template's: pepper, JWT settings, endpoints, tracing."""
    environ = os.environ if environ is None else environ
    return {
        **aws_environment(endpoint),
        "TOKEN_PEPPER": environ.get("HANGAR_TOKEN_PEPPER") or LOCAL_TOKEN_PEPPER,
        **_jwt_environment(environ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PUBLIC_API_URL": api_url,
    }


def _jwt_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """HS256 with the local secret, or a real issuer's JWKS (HANGAR_JWT_JWKS_URL and HANGAR_JWT_ISSUER)."""
    # A minimal passthrough for the OIDC e2e tests; the `local` rewrite owns the full switch and banner.
    if environ.get("HANGAR_JWT_JWKS_URL"):
        return {
            "JWT_JWKS_URL": environ["HANGAR_JWT_JWKS_URL"],
            "JWT_ISSUER": environ.get("HANGAR_JWT_ISSUER", ""),
            "JWT_AUDIENCE": environ.get("HANGAR_JWT_AUDIENCE") or LOCAL_JWT_AUDIENCE,
            "JWT_ALGORITHMS": environ.get("HANGAR_JWT_ALGORITHMS") or "RS256",
            "JWT_SECRET": "",
        }
    return {
        "JWT_ALGORITHMS": "HS256",
        "JWT_SECRET": local_jwt_secret(),
        "JWT_ISSUER": LOCAL_JWT_ISSUER,
        "JWT_AUDIENCE": LOCAL_JWT_AUDIENCE,
    }


def apply_environment(environment: Mapping[str, str]) -> None:
    """Install the functions' environment in this process (before any handler module is imported)."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in _AWS_VARIABLES_TO_CLEAR:
            del os.environ[name]
    os.environ.update(environment)
    # The pepper comes from TOKEN_PEPPER locally; JWTs are HS256 with the local secret unless an issuer is given.
    os.environ.pop("TOKEN_PEPPER_SECRET_ID", None)
    if not environment.get("JWT_JWKS_URL"):
        os.environ.pop("JWT_JWKS_URL", None)


class _Stop(Exception):
    """Raised in the main thread by SIGTERM / SIGINT."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def serve(
    port: int = 3000,
    host: str = "127.0.0.1",
    template_file: str | Path | None = None,
    run_schedules: bool = True,
    access_log: bool = True,
) -> int:
    """Run the local stack until stopped; returns the exit status."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Powertools warns on every invocation that emits no metric of its own; noise locally.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    moto: SerialMotoServer | None = None
    server: Any = None
    scheduler: Any = None
    try:
        template = load_template(template_file)
        backend_port = int(os.environ.get("HANGAR_DYNAMODB_PORT") or 0)
        moto = SerialMotoServer(host, backend_port)
        moto.start()
        endpoint = moto.endpoint
        apply_environment(aws_environment(endpoint))

        import boto3

        session = boto3.Session(region_name=REGION)
        provisioned = provision(template, session)

        # The API's socket first: its port (0 picks one) is part of the functions' environment.
        from local.gateway import Gateway, GatewayServer

        server = GatewayServer((host, port), access_log=access_log)
        api_url = server.url
        environment = function_environment(template, provisioned.resolver(template))
        environment.update(local_overrides(api_url, endpoint))
        apply_environment(environment)

        # Only now may anything read hangar settings (they are cached on first read).
        from local import limits
        from local.functions import FunctionRegistry, make_metrics_thread_safe
        from local.schedules import Scheduler

        make_metrics_thread_safe()
        specs = functions(template, Path(template_file).resolve().parent if template_file else REPO_ROOT)
        gateway = Gateway(
            routes=routes(template),
            authorizers=authorizers(template),
            gateway_responses=gateway_responses(template),
            functions=FunctionRegistry(specs),
            api=api_settings(template),
            schedules=schedules(template),
            limit_policy=limits.policy_for(template, session),
        )
        server.gateway = gateway

        api_key, key_note = mint_dev_api_key("demo")
        dev_jwt = mint_dev_jwt("demo", ALL_SCOPES, sub="dev@demo", ttl=86400)

        schedule_lines: list[str] = []
        if run_schedules and os.environ.get("HANGAR_LOCAL_SCHEDULES", "on").lower() not in (
            "off",
            "0",
            "false",
        ):
            scheduler = Scheduler(gateway.schedules.values(), gateway.run_schedule)
            schedule_lines = scheduler.start()
        else:
            schedule_lines = ["off (run one with POST /_local/schedules/<FunctionLogicalId>)"]

        lines = [
            "Hangar local stack (template.yaml; no Docker)",
            f"  API:               {api_url}   ({len(gateway.routes)} routes)",
            f"  DynamoDB endpoint: {endpoint}   (tables: {', '.join(provisioned.tables)})",
            "    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
            f"aws dynamodb list-tables --endpoint-url {endpoint} --region {REGION}",
            "  Dev JWT (org demo, every scope, expires in 1 day):",
            f"    {dev_jwt}",
            "  Dev API key (org demo, every scope but admin:licenses):",
            f"    {api_key}" if api_key else f"    ({key_note})",
            "  Schedules: " + "; ".join(schedule_lines or ["none"]),
            '  Local admin: GET /_local/health, POST /_local/clock {"advanceSeconds": n}, '
            "POST /_local/schedules/<FunctionLogicalId>, POST /_local/authorizer-cache/flush",
            READY_LINE.format(url=api_url),
        ]
        print("\n".join(lines), flush=True)
        server.serve_forever()
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if scheduler is not None:
            scheduler.stop()
        if server is not None:
            server.server_close()
        if moto is not None:
            try:
                moto.stop()
            except Exception as error:  # stopping is best effort; the process exits anyway
                print(f"local: stopping the backend: {error}", file=sys.stderr)
    print("Hangar local API stopped", flush=True)
    return 0
