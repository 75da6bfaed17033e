"""The local gateway behaves like API Gateway in front of the template's routes (real HTTP)."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from local import REPO_ROOT
from local.devtokens import local_jwt_secret
from local.gateway import Gateway, HttpRequest, Router
from local.limits import Grant, Refusal, RequestInfo
from local.template import (
    ApiSettings,
    AuthorizerSpec,
    GatewayResponseSpec,
    Route,
    gateway_responses,
    load_template,
    routes,
)
from local.testing import LocalApi, start_local_api


@cache
def _responses() -> dict[str, GatewayResponseSpec]:
    return gateway_responses(load_template())


def _expected(response_type: str, default_status: int) -> tuple[int, object]:
    """Status and JSON body the template's gateway response of that type gives (None: API Gateway's)."""
    spec = _responses().get(response_type)
    status = spec.status if spec and spec.status else default_status
    body = json.loads(spec.templates["application/json"]) if spec and "application/json" in spec.templates else None
    return status, body


def _assert_gateway_response(result: tuple[int, object, object], response_type: str, default_status: int) -> None:
    status, headers, body = result
    expected_status, expected_body = _expected(response_type, default_status)
    assert status == expected_status
    if expected_body is not None:
        assert body == expected_body
    assert headers["x-amzn-RequestId"]  # type: ignore[index]
    assert headers["x-amzn-ErrorType"]  # type: ignore[index]  # the gateway answered, not a function


# -- routing, without a server ---------------------------------------------------------------------


def _route(method: str, path: str) -> Route:
    return Route(method=method, path=path, function_id=f"{method}{path}", event_name="Api", authorizer=None)


def test_router_prefers_static_segments_and_decodes_parameters() -> None:
    router = Router(
        [
            _route("GET", "/api/runners/{runnerId}"),
            _route("POST", "/api/runners/heartbeat"),
            _route("GET", "/api/runners"),
        ]
    )
    heartbeat = router.match("POST", "/api/runners/heartbeat")
    assert heartbeat and heartbeat.route.path == "/api/runners/heartbeat"
    # The static resource wins even for a method it lacks: API Gateway does not fall back to {runnerId}.
    assert router.match("GET", "/api/runners/heartbeat") is None
    by_id = router.match("GET", "/api/runners/r%201")
    assert by_id and by_id.path_parameters == {"runnerId": "r 1"}
    assert router.match("GET", "/api/runners/").route.path == "/api/runners"  # type: ignore[union-attr]
    assert router.match("GET", "/api//runners") is None
    assert router.match("GET", "/api/runners/r1/extra") is None  # no greedy routes: template.yaml has none


def test_every_template_route_matches_itself() -> None:
    all_routes = routes(load_template())
    router = Router(all_routes)
    for route in all_routes:
        concrete = route.path.replace("{", "x").replace("}", "")
        match = router.match(route.method, concrete)
        assert match is not None and match.route == route, route


# -- the gateway in-process, with stub functions ----------------------------------------------------


class _Functions:
    """Stub functions: name -> callable(event); records every call."""

    def __init__(self, behaviours: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.behaviours = behaviours
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> Any:
        self.calls.append((logical_id, event))
        return self.behaviours[logical_id](event)

    def called(self, logical_id: str) -> list[dict[str, Any]]:
        return [event for name, event in self.calls if name == logical_id]


API_ARN = "arn:aws:execute-api:us-east-1:123456789012:local/prod"


def _allow(context: dict[str, Any], resource: str = f"{API_ARN}/*") -> Callable[[dict[str, Any]], Any]:
    def authorizer(event: dict[str, Any]) -> dict[str, Any]:
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}
        return {"principalId": "p1", "policyDocument": {"Statement": [statement]}, "context": context}

    return authorizer


def _echo(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}


class _Clock:
    def __init__(self) -> None:
        self.value = 1_800_000_000.0

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def _gateway(functions: _Functions, clock: _Clock | None = None, limit_policy: Any = None) -> Gateway:
    clock = clock or _Clock()
    return Gateway(
        routes=[
            Route("POST", "/api/runners/heartbeat", "Heartbeat", "Api", "Runner"),
            Route("GET", "/api/runners/{runnerId}", "GetRunner", "Api", "User"),
        ],
        authorizers={
            "Runner": AuthorizerSpec("Runner", "RunnerAuth", headers=("X-Runner-Token",), ttl_seconds=300),
            "User": AuthorizerSpec("User", "UserAuth"),
        },
        gateway_responses=_responses(),
        functions=functions,
        api=ApiSettings(logical_id="HangarApi", stage="prod"),
        limit_policy=limit_policy,
        now=clock.now,
        advance_clock=clock.advance,
        log=lambda line: None,
    )


def _request(method: str, path: str, headers: dict[str, str] | None = None, query: str = "") -> HttpRequest:
    return HttpRequest(method=method, raw_path=path, query_string=query, headers=list((headers or {}).items()))


def test_cached_allow_is_reused_until_the_ttl_passes() -> None:
    functions = _Functions(
        {"RunnerAuth": _allow({"runnerId": "r1", "tokenVersion": 3, "busy": False}), "Heartbeat": _echo}
    )
    clock = _Clock()
    gateway = _gateway(functions, clock)
    token = {"X-Runner-Token": "hgr_a"}
    for _ in range(2):
        response = gateway.handle(_request("POST", "/api/runners/heartbeat", token))
        assert response.status == 200
    assert len(functions.called("RunnerAuth")) == 1
    event = functions.called("Heartbeat")[-1]
    authorizer = event["requestContext"]["authorizer"]
    assert (authorizer["runnerId"], authorizer["tokenVersion"], authorizer["busy"]) == ("r1", 3, False)
    assert authorizer["principalId"] == "p1"
    # Another token is another cache entry; the clock passing the TTL calls the authorizer again.
    gateway.handle(_request("POST", "/api/runners/heartbeat", {"X-Runner-Token": "hgr_b"}))
    assert len(functions.called("RunnerAuth")) == 2
    clock.advance(301)
    gateway.handle(_request("POST", "/api/runners/heartbeat", token))
    assert len(functions.called("RunnerAuth")) == 3


def test_missing_identity_source_is_401_without_calling_the_authorizer() -> None:
    functions = _Functions({"RunnerAuth": _allow({}), "Heartbeat": _echo})
    response = _gateway(functions).handle(_request("POST", "/api/runners/heartbeat"))
    assert response.status == _expected("UNAUTHORIZED", 401)[0]
    assert functions.calls == []


def test_authorizer_outcomes_map_to_gateway_responses() -> None:
    def raises(message: str) -> Callable[[dict[str, Any]], Any]:
        def authorizer(event: dict[str, Any]) -> Any:
            raise Exception(message)  # what an authorizer raises for a 401

        return authorizer

    def deny(event: dict[str, Any]) -> dict[str, Any]:
        statement = {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": event["methodArn"]}
        return {"principalId": "p", "policyDocument": {"Statement": [statement]}}

    cases = [
        (raises("Unauthorized"), "UNAUTHORIZED", 401),
        (raises("boom"), "AUTHORIZER_FAILURE", 500),
        (deny, "ACCESS_DENIED", 403),
        (_allow({}, resource=f"{API_ARN}/POST/*"), "ACCESS_DENIED", 403),
        (lambda event: {"principalId": "p"}, "AUTHORIZER_CONFIGURATION_ERROR", 500),
        (_allow({"nested": {"no": 1}}), "AUTHORIZER_CONFIGURATION_ERROR", 500),
    ]
    for authorizer, response_type, default_status in cases:
        functions = _Functions({"UserAuth": authorizer, "GetRunner": _echo})
        response = _gateway(functions).handle(_request("GET", "/api/runners/r1"))
        expected_status, expected_body = _expected(response_type, default_status)
        assert response.status == expected_status, response_type
        if expected_body is not None and response_type in _responses():
            assert json.loads(response.body) == expected_body
        assert functions.called("GetRunner") == []


def test_proxy_event_has_the_rest_v1_shape() -> None:
    functions = _Functions({"UserAuth": _allow({"orgId": "acme"}), "GetRunner": _echo})
    response = _gateway(functions).handle(
        _request("GET", "/api/runners/r%2F1/", {"User-Agent": "t", "X-Multi": "a"}, query="a=1&a=2&b=")
    )
    assert response.status == 200
    assert response.header("x-amzn-RequestId")
    event = functions.called("GetRunner")[0]
    assert event["resource"] == "/api/runners/{runnerId}"
    assert event["pathParameters"] == {"runnerId": "r/1"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod" and context["path"].startswith("/prod/api/runners/")
    assert context["resourcePath"] == "/api/runners/{runnerId}"
    assert context["identity"]["userAgent"] == "t"
    assert context["authorizer"]["orgId"] == "acme"
    assert context["requestId"] == response.header("x-amzn-RequestId")
    authorizer_event = functions.called("UserAuth")[0]
    assert authorizer_event["type"] == "REQUEST"
    assert authorizer_event["methodArn"].endswith("local/prod/GET/api/runners/r%2F1/")
    assert event["path"] == "/api/runners/r%2F1/"


def test_malformed_function_answer_is_502() -> None:
    functions = _Functions({"UserAuth": _allow({}), "GetRunner": lambda event: {"body": {}}})
    response = _gateway(functions).handle(_request("GET", "/api/runners/r1"))
    assert response.status == 502


def test_limit_policy_refusal_uses_the_templates_gateway_response() -> None:
    seen: list[Grant | None] = []

    class Throttle:
        def before_authorizer(self, request: RequestInfo, route: Route) -> Refusal | None:
            return None

        def after_authorizer(self, request: RequestInfo, route: Route, grant: Grant | None) -> Refusal | None:
            seen.append(grant)
            return Refusal("THROTTLED", headers={"Retry-After": "7"})

    functions = _Functions({"RunnerAuth": _allow({"runnerId": "r1"}), "Heartbeat": _echo})
    response = _gateway(functions, limit_policy=Throttle()).handle(
        _request("POST", "/api/runners/heartbeat", {"X-Runner-Token": "hgr_a"})
    )
    expected_status, expected_body = _expected("THROTTLED", 429)
    assert response.status == expected_status
    if expected_body is not None:
        assert json.loads(response.body) == expected_body
    assert [value for name, value in response.headers if name.lower() == "retry-after"] == ["7"]
    assert seen and seen[0] is not None and seen[0].context["runnerId"] == "r1"
    assert functions.called("Heartbeat") == []


# -- over HTTP ---------------------------------------------------------------------------------------


def test_health(local_api: LocalApi) -> None:
    status, _, body = local_api.call("GET", "/_local/health")
    assert (status, body) == (200, {"ok": True})


def test_unknown_route_is_the_missing_authentication_token_response(local_api: LocalApi) -> None:
    _assert_gateway_response(local_api.call("GET", "/no/such/route"), "MISSING_AUTHENTICATION_TOKEN", 403)
    # A known path with a method it does not have answers the same.
    _assert_gateway_response(local_api.call("PATCH", "/api/runners"), "MISSING_AUTHENTICATION_TOKEN", 403)


def test_missing_credential_is_the_templates_unauthorized_response(local_api: LocalApi) -> None:
    _assert_gateway_response(local_api.call("GET", "/api/runners"), "UNAUTHORIZED", 401)
    # The runner authorizer's identity source (X-Runner-Token) is missing: 401 before any call.
    _assert_gateway_response(local_api.call("POST", "/api/runners/heartbeat", json={}), "UNAUTHORIZED", 401)


def test_static_segment_beats_path_parameter(local_api: LocalApi, org: str) -> None:
    token = local_api.jwt(org, "runners:read runners:manage")
    # /api/runners/heartbeat is its own resource (POST only), not {runnerId} = "heartbeat".
    _assert_gateway_response(
        local_api.call("GET", "/api/runners/heartbeat", token=token), "MISSING_AUTHENTICATION_TOKEN", 403
    )
    # A valid user JWT does not pass the runner authorizer: the route is the runner one.
    _assert_gateway_response(
        local_api.call("POST", "/api/runners/heartbeat", token=token, json={}), "UNAUTHORIZED", 401
    )
    # Any other segment is a runner id, answered by the function (no gateway error type).
    status, headers, _ = local_api.call("GET", "/api/runners/not-a-runner", token=token)
    assert status == 404
    assert headers["x-amzn-ErrorType"] is None


def test_trailing_slash_names_the_same_resource(local_api: LocalApi, org: str) -> None:
    token = local_api.jwt(org, "runners:read")
    plain = local_api.call("GET", "/api/runners", token=token)
    slashed = local_api.call("GET", "/api/runners/", token=token)
    assert plain.status == slashed.status == 200
    assert plain.body == slashed.body


def test_head_and_options_are_not_server_errors(local_api: LocalApi) -> None:
    for method in ("HEAD", "OPTIONS"):
        status, headers, _ = local_api.call(method, "/api/runners")
        assert status < 500
        assert headers["x-amzn-RequestId"]


def test_oversized_body_is_refused_at_the_socket(local_api: LocalApi) -> None:
    url = urlsplit(local_api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(
            b"POST /api/runners HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n"
        )
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    expected_status, expected_body = _expected("REQUEST_TOO_LARGE", 413)
    assert head.split(b" ")[1] == str(expected_status).encode()
    if expected_body is not None:
        assert json.loads(body) == expected_body


def test_clock_moves_forward(local_api: LocalApi) -> None:
    before = local_api.now()
    after = local_api.advance_clock(5)
    assert after >= before + 5
    assert local_api.call("POST", "/_local/clock", json={"advanceSeconds": -1}).status == 400


def test_unknown_schedule_is_404(local_api: LocalApi) -> None:
    assert local_api.call("POST", "/_local/schedules/NoSuchFunction").status == 404


def test_token_command_prints_a_verifiable_jwt() -> None:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "local",
            "token",
            "--org",
            "acme",
            "--scope",
            "runners:read jobs:read",
            "--ttl",
            "600",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    claims = jwt.decode(
        output,
        local_jwt_secret(),
        algorithms=["HS256"],
        audience="hangar",
        issuer="hangar-local",
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    assert claims["org"] == "acme"
    assert claims["scope"].split() == ["runners:read", "jobs:read"]
    assert 0 < claims["exp"] - claims["iat"] <= 600


@pytest.mark.parametrize("scopes", ["runners:read", "runners:read runners:manage"])
def test_dev_jwt_is_accepted_by_the_user_authorizer(local_api: LocalApi, org: str, scopes: str) -> None:
    status, _, body = local_api.call("GET", "/api/runners", token=local_api.jwt(org, scopes))
    assert status == 200
    assert body["success"] is True


# -- HTTP details, pages, output and start-up (issue 10 item 9, issue 11 items 10-15) ----------------


def test_an_unknown_http_method_gets_the_gateways_json_404(local_api: LocalApi) -> None:
    for method in ("PROPFIND", "BREW"):
        _assert_gateway_response(local_api.call(method, "/api/runners"), "MISSING_AUTHENTICATION_TOKEN", 403)


def test_keep_alive_connection_serves_many_requests(local_api: LocalApi) -> None:
    url = urlsplit(local_api.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        for _ in range(5):
            connection.request("GET", "/_local/health")
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (200, {"ok": True})
            assert response.getheader("Connection") != "close"
        assert connection.sock is not None  # the same socket throughout: never reconnected
    finally:
        connection.close()


def test_chunked_request_body_reaches_the_handler(local_api: LocalApi, org: str) -> None:
    token = local_api.jwt(org, "runners:manage")
    url = urlsplit(local_api.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        body = iter([b'{"name": ', b'"chunky"}'])
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request("POST", "/api/runners", body=body, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 201
        assert json.loads(response.read())["data"]["name"] == "chunky"
    finally:
        connection.close()


def _error_shape(body: Any) -> tuple[set[str], set[str]]:
    return set(body), set(body["error"]) - {"field"}


def test_each_dialect_has_one_error_shape_except_the_documented_gateway_one(local_api: LocalApi, org: str) -> None:
    """README "Error bodies": /api errors are {"success": false, "error"} everywhere; /v1 handler errors are
    {"error"}; gateway responses (no handler ran) have the /api shape on /v1 too, same error fields."""
    token = local_api.jwt(org, "runners:read jobs:read")
    api_handler = local_api.call("GET", "/api/runners/nope", token=token)
    api_gateway = local_api.call("GET", "/api/runners")
    v1_handler = local_api.call("GET", "/v1/jobs/nope", token=token)
    v1_gateway = local_api.call("GET", "/v1/jobs")
    assert api_handler.status == v1_handler.status == 404  # handlers answered
    assert api_gateway.status == v1_gateway.status == 401  # the gateway answered (no credential)
    assert (
        _error_shape(api_handler.body) == _error_shape(api_gateway.body) == ({"success", "error"}, {"code", "message"})
    )
    assert api_handler.body["success"] is False and api_gateway.body["success"] is False
    assert _error_shape(v1_handler.body) == ({"error"}, {"code", "message"})
    assert _error_shape(v1_gateway.body) == ({"success", "error"}, {"code", "message"})  # the exception
    assert v1_gateway.body["success"] is False


def test_default_output_is_one_readable_line_per_request_without_metric_blobs(local_api: LocalApi, org: str) -> None:
    mark = local_api.output_mark()
    local_api.call("GET", "/api/runners", token=local_api.jwt(org, "runners:read"))
    local_api.call("GET", "/api/runners/r1/setup?token=hgr_secret_value")
    deadline = time.monotonic() + 30
    while "/api/runners/r1/setup" not in local_api.output(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    output = local_api.output(mark)
    assert re.search(r"GET /api/runners -> 200 \([0-9.]+ ms\)", output), output
    # A credential the authorizer refuses is its Deny, answered by the template's 401 ACCESS_DENIED response.
    assert re.search(r"GET /api/runners/r1/setup\?token=… -> 401 \([0-9.]+ ms\) +ACCESS_DENIED", output), output
    assert "hgr_secret_value" not in output  # query values may be credentials: never printed
    assert '"_aws"' not in output and '"level"' not in output  # no EMF metrics, no JSON log lines


def test_the_demo_org_has_room_for_a_real_trial(local_api: LocalApi) -> None:
    status, _, body = local_api.call("GET", "/v1/license", token=local_api.jwt("demo", "runners:read"))
    assert status == 200 and body["plan"] == "team"


def test_index_and_interactive_docs_are_served_locally(local_api: LocalApi) -> None:
    status, headers, page = local_api.call("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'href="/openapi.json"' in page and 'href="/docs"' in page
    status, headers, docs = local_api.call("GET", "/docs")
    assert status == 200 and "SwaggerUIBundle" not in docs  # no inline script: it is in /docs/start.js
    assert "http://" not in docs and "https://" not in docs  # nothing from another origin
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', docs):
        assert local_api.call("GET", asset).status == 200, asset
    document = local_api.call("GET", "/openapi.json").body
    assert document["servers"] == [{"url": local_api.url, "description": "this make run"}]
    assert document["paths"] == json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())["paths"]


@pytest.fixture(scope="module")
def console_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalApi, Path]]:
    """A server with a throwaway console directory, JSON logs, and an (unreachable) identity provider."""
    console = tmp_path_factory.mktemp("console")
    (console / "index.html").write_text('<!doctype html><script src="app.js"></script>')
    (console / "app.js").write_text("console.log('hangar')")
    environment = {
        "HANGAR_CONSOLE_DIR": str(console),
        "HANGAR_LOCAL_LOG": "json",
        "HANGAR_JWT_JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "HANGAR_JWT_ISSUER": "https://idp.example/",
    }
    api = start_local_api(extra_env=environment, timeout=60)
    try:
        yield api, console
    finally:
        api.stop()


def test_console_files_are_served_with_security_headers(console_api: tuple[LocalApi, Path]) -> None:
    api, _ = console_api
    assert 'href="/console/"' in api.call("GET", "/").body
    redirect = api.call("GET", "/console")
    assert redirect.status == 200 and "app.js" in redirect.body  # urllib follows the 308 to /console/
    for path, content_type in (("/console/", "text/html"), ("/console/app.js", "text/javascript")):
        status, headers, _ = api.call("GET", path)
        assert status == 200 and headers["Content-Type"].startswith(content_type), path
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert api.call("GET", "/console/missing.js").status == 404
    assert api.call("GET", "/console/..%2f..%2fetc%2fpasswd").status == 404


def test_json_logs_and_an_identity_provider_instead_of_the_dev_secret(console_api: tuple[LocalApi, Path]) -> None:
    api, _ = console_api
    banner = api.output()
    assert "JWTs from https://idp.example/" in banner and "Dev JWT" not in banner
    mark = api.output_mark()
    assert api.call("GET", "/_local/health").status == 200
    deadline = time.monotonic() + 30
    while '"/_local/health"' not in api.output(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [json.loads(line) for line in api.output(mark).splitlines() if line.startswith("{")]
    assert any(line["path"] == "/_local/health" and line["status"] == 200 for line in lines), lines


def _start_failure(extra_env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "local", "serve", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("option", "setting"), [("--port", "PORT"), ("--backend-port", "HANGAR_BACKEND_PORT")])
def test_a_port_in_use_says_which_setting_to_change(option: str, setting: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        other = "--backend-port" if option == "--port" else "--port"
        result = _start_failure({}, [option, port, other, "0"])
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use: set {setting}=" in result.stderr


def test_a_malformed_request_gets_the_templates_default_4xx_shape(local_api: LocalApi) -> None:
    url = urlsplit(local_api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(b"POST /api/runners HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400"
    document = json.loads(body)
    assert document["success"] is False and document["error"]["code"] == "bad_request"
