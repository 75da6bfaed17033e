"""The console's security and usability promises: a wrong key is refused in words, the key never appears
in a URL or localStorage and goes only to the API, the CSP is served, CORS lets in the configured origin
and no other, errors name the field at fault, keyboard use, phone width and the dark theme."""

from __future__ import annotations

import re

from console_harness import CHROMIUM_FLAGS, ConsoleServer, Guard, OtherOrigin, screenshot, sign_in, watch_page
from playwright.sync_api import Browser, Page, expect

from local.testing import http_call

WRONG_KEY = "hgk_0123456789ab_" + "A" * 38


def storage(page: Page, kind: str) -> dict[str, str]:
    result: dict[str, str] = page.evaluate(f"Object.fromEntries(Object.entries({kind}))")
    return result


def test_a_wrong_key_shows_a_sign_in_error_and_keeps_nothing(page: Page, server: ConsoleServer, guard: Guard) -> None:
    guard.expect(r"HTTP 401: GET .*/v1/license$")
    guard.expect(r"console error: Failed to load resource: .* 401 ")
    page.goto(server.console_url)
    screenshot(page, "sign-in")
    page.fill("#credential", WRONG_KEY)
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#credential-error")
    expect(error).to_have_text("The API refused this credential: Invalid API key")
    expect(page.locator("#credential")).to_have_attribute("aria-invalid", "true")
    assert storage(page, "sessionStorage") == {} and storage(page, "localStorage") == {}
    expect(page.get_by_role("navigation")).to_be_hidden()


def test_the_key_stays_out_of_urls_and_local_storage_and_goes_only_to_the_api(
    page: Page, server: ConsoleServer, guard: Guard
) -> None:
    sign_in(page, server)
    for name, heading in (("Jobs", "Jobs"), ("Readiness", "Readiness"), ("Runners", "Runners")):
        page.get_by_role("navigation").get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Runners")).to_be_visible()  # the tab keeps the session
    assert storage(page, "localStorage") == {}
    assert server.dev_key in storage(page, "sessionStorage").values()
    assert guard.requests, "no request seen"
    for request in guard.requests:
        assert server.dev_key not in request.url
        sent = request.headers.get("x-api-key")
        if sent is not None:  # only to the API's routes
            assert sent == server.dev_key
            assert request.url.startswith((server.api.url + "/v1/", server.api.url + "/api/")), request.url
        assert "authorization" not in request.headers
    assert any(r.headers.get("x-api-key") == server.dev_key for r in guard.requests)
    assert server.dev_key not in page.url
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Hangar")).to_be_visible()
    assert storage(page, "sessionStorage") == {}
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Hangar")).to_be_visible()


def test_the_console_is_served_with_a_strict_csp_and_security_headers(server: ConsoleServer) -> None:
    for path in ("/console/", "/console/js/app.js", "/console/styles.css"):
        result = http_call("GET", server.api.url + path)
        assert result.status == 200, path
        csp = result.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert result.headers["X-Content-Type-Options"] == "nosniff"
        assert result.headers["Referrer-Policy"] == "no-referrer"
    assert http_call("GET", server.api.url + "/console/js/app.js").headers["Content-Type"].startswith("text/javascript")


def test_cors_answers_the_configured_origin_only(server: ConsoleServer, other_origin: OtherOrigin) -> None:
    allowed, refused = other_origin.allowed, other_origin.refused
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}
    ok = http_call("OPTIONS", server.api.url + "/v1/runners", headers={"Origin": allowed, **preflight})
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == allowed
    assert "x-api-key" in ok.headers["Access-Control-Allow-Headers"].lower()
    other = http_call("OPTIONS", server.api.url + "/v1/runners", headers={"Origin": refused, **preflight})
    assert other.headers["Access-Control-Allow-Origin"] != refused  # the browser refuses the preflight
    key = {"X-API-Key": server.dev_key}
    assert (
        http_call("GET", server.api.url + "/v1/runners", headers={"Origin": allowed, **key}).headers[
            "Access-Control-Allow-Origin"
        ]
        == allowed
    )
    assert (
        "Access-Control-Allow-Origin"
        not in http_call("GET", server.api.url + "/v1/runners", headers={"Origin": refused, **key}).headers
    )
    # The gateway's own refusal (the authorizer's 401) is readable by the console too.
    denied = http_call("GET", server.api.url + "/v1/runners", headers={"Origin": allowed, "X-API-Key": WRONG_KEY})
    assert denied.status == 401 and denied.headers["Access-Control-Allow-Origin"] == allowed
    assert http_call("OPTIONS", server.api.url + "/v1/no-such-route", headers={"Origin": allowed}).status == 404


def test_a_console_on_the_configured_origin_works_and_one_on_another_is_refused(
    browser: Browser, server: ConsoleServer, other_origin: OtherOrigin
) -> None:
    for origin, works in ((other_origin.allowed, True), (other_origin.refused, False)):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        guard = Guard()
        try:
            page = context.new_page()
            watch_page(page, guard)
            if not works:
                guard.expect(r"blocked by CORS policy")
                guard.expect(r"request failed: .*/v1/license")
                guard.expect(r"console error: Failed to load resource: net::ERR_FAILED at .*/v1/license")
            page.goto(f"{origin}/index.html")
            page.fill("#credential", server.dev_key)
            page.get_by_text("API URL", exact=True).click()
            page.fill("#api-url", server.api.url)
            page.get_by_role("button", name="Sign in").click()
            if works:
                expect(page.get_by_role("heading", name="Runners")).to_be_visible()
                expect(page.get_by_text("demo · team")).to_be_visible()
                page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
                expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
            else:
                expect(page.locator("#apiUrl-error, #api-url-error")).to_contain_text(
                    "does not allow this console's origin"
                )
                assert storage(page, "sessionStorage") == {}
            assert guard.problems == [], "\n".join(guard.problems)
        finally:
            context.close()
    assert "--headless" in CHROMIUM_FLAGS


def test_a_refused_field_is_named_next_to_its_input(page: Page, server: ConsoleServer, guard: Guard) -> None:
    guard.expect(r"HTTP 400: POST .*/v1/jobs$")
    guard.expect(r"console error: Failed to load resource: .* 400 ")
    sign_in(page, server)
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    page.get_by_role("button", name="New job").click()
    page.get_by_label("Type").fill("not a type!")
    page.get_by_role("button", name="Create job").click()
    error = page.locator("#job-type-error")
    expect(error).to_contain_text("type")
    expect(page.get_by_label("Type")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_keyboard_only(page: Page, server: ConsoleServer) -> None:
    page.goto(server.console_url)
    expect(page.locator("#credential")).to_be_focused()
    page.keyboard.type(server.dev_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Runners")).to_be_visible()
    for _ in range(12):  # Tab to the Jobs link, Enter follows it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Jobs":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "New job":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_label("Type")).to_be_focused()  # the dialog took the focus
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.goto(server.console_url + "#/no-such-page")  # an unknown page says so, with a way back
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.get_by_role("link", name="Go to runners").click()
    expect(page.get_by_role("heading", name="Runners")).to_be_visible()


def test_readable_at_phone_width_and_in_the_dark_theme(browser: Browser, server: ConsoleServer) -> None:
    key = {"api_key": server.dev_key}
    created = server.api.call("POST", "/api/runners", json={"name": "laptop", "labels": ["linux", "arm64"]}, **key)
    assert created.status == 201, created.body
    runner_id = created.body["data"]["_id"]
    queued = {"type": "scan", "repositoryName": "acme/site", "labels": ["gpu"]}  # no runner has gpu: stays queued
    job = server.api.call("POST", "/v1/jobs", json=queued, **key)
    assert job.status == 201, job.body
    try:
        for name, options in (
            ("phone", {"viewport": {"width": 390, "height": 844}, "color_scheme": "light", "is_mobile": True}),
            ("dark", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}),
        ):
            context = browser.new_context(**options)
            try:
                page = context.new_page()
                sign_in(page, server)
                pages = (
                    ("Jobs", f'tr[data-job-id="{job.body["id"]}"]'),
                    ("Readiness", ".check"),
                    ("Runners", f'tr[data-runner-id="{runner_id}"]'),
                )
                for link, row in pages:
                    page.get_by_role("navigation").get_by_role("link", name=link).click()
                    expect(page.locator(row).first).to_be_visible()
                    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
                    assert overflow <= 0, f"{name}: {link} scrolls sideways by {overflow}px"
                background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                red, green, blue = (int(part) for part in re.findall(r"\d+", background)[:3])
                assert (red + green + blue < 150) == (name == "dark"), background
                screenshot(page, f"{name}-runners")
            finally:
                context.close()
    finally:
        server.api.call("POST", f"/v1/jobs/{job.body['id']}/cancel", **key)
        server.api.call("DELETE", f"/api/runners/{runner_id}", **key)
