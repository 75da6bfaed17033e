"""make run without ConsoleOrigin: the console is served from the API's own origin, so the API answers
no other origin at all - no preflight route, no CORS header on handler or gateway responses. (With
ConsoleOrigin set, tests/browser checks the preflight, both kinds of response and a real browser.)"""

from __future__ import annotations

from local.testing import LocalApi


def test_without_a_console_origin_no_origin_may_read_the_api(local_api: LocalApi, org: str) -> None:
    origin = {"Origin": "https://console.example.com"}
    preflight = local_api.call("OPTIONS", "/v1/runners", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status == 404 and "Access-Control-Allow-Origin" not in preflight.headers
    ok = local_api.call("GET", "/v1/runners", headers=origin, token=local_api.jwt(org, "runners:read"))
    assert ok.status == 200 and "Access-Control-Allow-Origin" not in ok.headers
    refused = local_api.call("GET", "/v1/runners", headers=origin, api_key="hgk_0123456789ab_" + "A" * 38)
    assert refused.status == 401 and "Access-Control-Allow-Origin" not in refused.headers
