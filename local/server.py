"""Start-up of the local stack, in this order: bind the API's and the backend's ports (a taken one is
reported at once), start the embedded backend (a child process), create the template's resources, put
the functions' environment in place, build the gateway and serve it until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from local import REPO_ROOT
from local.http import bind, request_of, respond, serve_wsgi, stop_wsgi, url_of, wsgi_server
from local.logs import Console, log_mode

LOCAL_TOKEN_PEPPER = "hangar-local-pepper-not-for-production"
READY_LINE = "Hangar local API ready on {url}"
"""Printed last at start-up; tests wait for it (`local.testing`)."""
DEMO_ORG = "demo"
DEMO_PLAN = "team"  # room for a real trial: 10 runners, 10 concurrent jobs (the default plan is free)

# Variables that could send a local handler to real AWS, or to another endpoint than the local one.
AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)  # fmt: skip
# The template's settings local/ replaces: the pepper comes from TOKEN_PEPPER, the JWT settings from sign_in().
_TEMPLATE_VARIABLES_REPLACED = ("TOKEN_PEPPER_SECRET_ID", "JWT_JWKS_URL", "JWT_SECRET", "JWT_ALGORITHMS")


@dataclass
class Stack:
    """The running gateway: its WSGI server, routes and schedules."""

    server: Any
    routes: list[Any]
    schedules: dict[str, Any]
    run_schedule: Any
    event_sources: Any = None


@dataclass(frozen=True)
class Options:
    port: int = 3000
    host: str = "127.0.0.1"
    backend_host: str = "127.0.0.1"
    backend_port: int = 8000
    template_file: str | None = None
    run_schedules: bool = True
    access_log: bool = True


def aws_environment(backend: str, dynamodb_endpoint: str | None) -> dict[str, str]:
    """What points every AWS SDK call of this process at the local backend (DynamoDB maybe elsewhere)."""
    from local.template import REGION

    environment = {
        "AWS_ENDPOINT_URL": backend,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if dynamodb_endpoint:
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    return environment


def apply_environment(environment: Mapping[str, str]) -> None:
    """Install the functions' environment in this process (before any handler module is imported)."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in (*AWS_VARIABLES_TO_CLEAR, *_TEMPLATE_VARIABLES_REPLACED):
            del os.environ[name]
    os.environ.update(environment)


class _Stop(Exception):
    """Raised in the main thread by SIGTERM / SIGINT."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def serve(options: Options) -> int:
    """Run the local stack until stopped; returns the exit status."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console = Console(log_mode(), access_log=options.access_log)
    api_socket = bind(options.host, options.port, "PORT")
    backend_socket = bind(options.backend_host, options.backend_port, "HANGAR_BACKEND_PORT")
    backend = subprocess.Popen(
        [sys.executable, "-m", "local", "backend", "--fd", str(backend_socket.fileno())],
        pass_fds=[backend_socket.fileno()],
        stdin=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    stack: Stack | None = None
    scheduler: Any = None
    try:
        stack, banner = _start(options, console, api_socket, url_of(backend_socket))
        backend_socket.close()  # the child has its own copy
        if options.run_schedules and os.environ.get("HANGAR_LOCAL_SCHEDULES", "on").lower() not in ("off", "0"):
            from local.schedules import Scheduler

            scheduler = Scheduler(stack.schedules.values(), stack.run_schedule)
            banner.append("  Schedules: " + "; ".join(scheduler.start() or ["none"]))
            stack.event_sources.start()
            banner.append("  Streams and queues: polled every second (and by POST /_local/deliveries/flush)")
        else:
            banner.append("  Schedules: off (run one with POST /_local/schedules/<FunctionLogicalId>)")
            banner.append("  Streams and queues: polled by POST /_local/deliveries/flush only")
        console.print("\n".join([*banner, READY_LINE.format(url=url_of(api_socket))]))
        serve_wsgi(stack.server)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if scheduler is not None:
            scheduler.stop()
        if stack is not None:
            stack.event_sources.stop()
        if stack is not None:
            stop_wsgi(stack.server)
        api_socket.close()
        backend.stdin.close()  # type: ignore[union-attr]  # the backend exits when its stdin closes
        try:
            backend.wait(5)
        except subprocess.TimeoutExpired:
            backend.kill()
    console.print("Hangar local API stopped")
    return 0


def _start(options: Options, console: Console, api_socket: Any, backend: str) -> tuple[Stack, list[str]]:
    from local.devtokens import sign_in
    from local.template import REGION, load_template, local_table_name

    template = load_template(options.template_file)
    # Webhooks may point at this machine's receivers (loopback only) in local mode, never in a deployment.
    os.environ.setdefault("HANGAR_PARAM_AllowInsecureWebhooks", "true")
    login = sign_in()  # a bad HANGAR_JWT_* setting fails before anything starts
    external = os.environ.get("HANGAR_DYNAMODB_ENDPOINT") or None
    apply_environment(aws_environment(backend, external))
    import boto3

    from local.provision import provision, restore_tenant_keys
    from local.template import function_environment, functions

    session = boto3.Session(region_name=REGION)
    dynamodb = session.client("dynamodb")
    provisioned = provision(template, session, dynamodb)
    api_url = url_of(api_socket)
    environment = function_environment(template, provisioned.resolver(template))
    for name in _TEMPLATE_VARIABLES_REPLACED:
        environment.pop(name, None)
    environment.update(aws_environment(backend, external))
    environment.update(login.environment)
    environment.update(
        TOKEN_PEPPER=os.environ.get("HANGAR_TOKEN_PEPPER") or LOCAL_TOKEN_PEPPER,
        POWERTOOLS_TRACE_DISABLED="true",
        PUBLIC_API_URL=api_url,
    )
    if not console.json:  # one line per request: handlers' INFO logs and EMF metrics stay quiet
        environment.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
    apply_environment(environment)

    # Only now may anything read hangar settings (they are cached on first read).
    from local.functions import FunctionRegistry, make_logger_keys_per_thread, make_metrics_thread_safe

    make_metrics_thread_safe(quiet=not console.json)
    console.install_handler_logging(environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
    make_logger_keys_per_thread()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    base_dir = Path(options.template_file).resolve().parent if options.template_file else REPO_ROOT
    registry = FunctionRegistry(functions(template, base_dir))
    stack = _stack(template, registry, session, console, api_socket, api_url, backend)
    stack.event_sources = _event_sources(
        template, provisioned, session, dynamodb, external or backend, registry, console
    )
    kept = ""
    if external:
        prefix = environment.get("USAGE_PLAN_NAME_PREFIX", "")
        restored = restore_tenant_keys(backend, session, dynamodb, local_table_name("OrgsTable"), prefix)
        kept = f"; kept, with {restored} tenants"
    demo = _demo_credentials(login.issuer_mode)
    tables = ", ".join(provisioned.tables)
    return stack, [
        "Hangar local stack (template.yaml; no Docker)",
        f"  API:               {api_url}   ({len(stack.routes)} routes; /docs, /openapi.json)",
        f"  DynamoDB endpoint: {external or backend}   (tables: {tables}{kept})",
        f"  AWS backend:       {backend}   (moto: S3 artifacts, KMS, Secrets Manager, API Gateway keys; in memory)",
        "    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"aws dynamodb list-tables --endpoint-url {external or backend} --region {REGION}",
        *login.banner(),
        *demo,
        '  Local admin: GET /_local/health, POST /_local/clock {"advanceSeconds": n}, '
        "POST /_local/schedules/<FunctionLogicalId>, POST /_local/authorizer-cache/flush, "
        "POST /_local/deliveries/flush",
    ]


def _event_sources(
    template: Any,
    provisioned: Any,
    session: Any,
    dynamodb: Any,
    dynamodb_endpoint: str,
    registry: Any,
    console: Console,
) -> Any:
    """The template's stream and queue event sources on the provisioned tables and queues."""
    from local import event_sources
    from local.template import event_sources as event_source_specs

    return event_sources.build(
        event_source_specs(template),
        provisioned.refs,
        provisioned.attrs,
        session,
        dynamodb,
        session.client("dynamodbstreams", endpoint_url=dynamodb_endpoint),
        registry.invoke,
        console.error,
    )


def _advance_clock(backend: str) -> Any:
    """Moves the local clock and the embedded SQS's with it (delays and visibility timeouts)."""
    import json
    import urllib.request

    from hangar.core import clock

    from local.backend import CLOCK_PATH

    def advance(seconds: float) -> None:
        clock.advance(seconds)
        body = json.dumps({"offsetSeconds": clock.offset()}).encode()
        urllib.request.urlopen(
            urllib.request.Request(backend + CLOCK_PATH, data=body, method="POST"), timeout=10
        ).close()

    return advance


def _stack(
    template: Any, registry: Any, session: Any, console: Console, api_socket: Any, api_url: str, backend: str
) -> Stack:
    """The gateway, its admin routes and the site as one WSGI app on the API's socket."""
    from local import limits
    from local.admin import Admin
    from local.gateway import Gateway
    from local.schedules import scheduled_event
    from local.site import Site
    from local.template import api_settings, authorizers, gateway_responses, routes, schedules

    gateway = Gateway(
        routes=routes(template),
        authorizers=authorizers(template),
        gateway_responses=gateway_responses(template),
        functions=registry,
        api=api_settings(template),
        limit_policy=limits.policy_for(template, session),
        log=console.error,
        advance_clock=_advance_clock(backend),
    )

    def run_schedule(schedule: Any) -> Any:
        started = time.monotonic()
        try:
            result = registry.invoke(schedule.function_id, scheduled_event(schedule))
        except Exception as error:
            console.error(f"local: scheduled {schedule.function_id} failed\n{traceback.format_exc()}")
            console.schedule(schedule.function_id, time.monotonic() - started, str(error), failed=True)
            raise
        console.schedule(schedule.function_id, time.monotonic() - started, result)
        return result

    by_function = {schedule.function_id: schedule for schedule in schedules(template)}
    stack: Stack | None = None
    admin = Admin(gateway, by_function, run_schedule, flush=lambda: stack.event_sources.drain() if stack else 0)
    site = Site()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.monotonic()
        request = request_of(environ)
        if request.raw_path == "/_local" or request.raw_path.startswith("/_local/"):
            response = admin.handle(request, str(uuid.uuid4()))
        else:
            response = site.handle(request, api_url) or gateway.handle(request)
        console.request(
            request.method, request.raw_path, request.query_string, response.status,
            time.monotonic() - started, response.response_type,
        )  # fmt: skip
        return respond(response, start_response, head=request.method == "HEAD")

    def refused(status: int) -> Any:  # what waitress refuses before the app: a body over the limit
        kind = "REQUEST_TOO_LARGE" if status == 413 else "DEFAULT_4XX"
        return gateway.gateway_response(kind, str(uuid.uuid4()), status=None if status == 413 else status)

    server = wsgi_server(app, api_socket, threads=16, error_response=refused)
    stack = Stack(server, gateway.routes, by_function, run_schedule)
    return stack


def _demo_credentials(issuer_mode: bool) -> list[str]:
    """The demo org on the team plan (when it is new), its dev API key and, with the dev secret, a JWT."""
    from hangar.store import orgs
    from hangar.tenancy import licensing
    from hangar.tenancy.models.licenses import PutLicenseRequest

    from local.devtokens import ALL_SCOPES, mint_dev_api_key, mint_dev_jwt

    lines = []
    try:
        if orgs.get_org(DEMO_ORG) is None:
            licensing.put_org_license(DEMO_ORG, PutLicenseRequest.model_validate({"plan": DEMO_PLAN}))
        demo_org = orgs.get_org(DEMO_ORG)
        plan = (demo_org.plan if demo_org else None) or "?"
        lines += [
            f"  Dev API key (org {DEMO_ORG}, {plan} plan, every scope but admin:licenses):",
            f"    {mint_dev_api_key()}",
        ]
    except Exception as error:  # the stack still serves; the banner says why there is no key
        lines.append(f"  No dev API key: {type(error).__name__}: {error}")
    if not issuer_mode:
        jwt = mint_dev_jwt(DEMO_ORG, ALL_SCOPES, sub=f"dev@{DEMO_ORG}", ttl=86400)
        lines += [
            f"  Dev JWT (org {DEMO_ORG}, every scope, expires in 1 day; python -m local token for others):",
            f"    {jwt}",
        ]
    return lines
