"""Browser tests of the console: one real `python -m local` (with a configured other console origin) and
one headless Chromium (Debian's, /usr/bin/chromium, driven by Playwright) for the whole session; each
test gets a fresh browser context (its own sessionStorage, cookies, permissions).

`page` fails its test on any console error, uncaught page error, failed request or HTTP error response,
unless the test said it expects it (`guard.expect(...)`). Screenshots go to .tools/screenshots/
(`make screenshots`: docs/console/). What the tests share besides fixtures is in console_harness.py.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from console_harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    DEV_KEY_RE,
    FAST_INTERVALS,
    REPO_ROOT,
    VIEWPORT,
    ConsoleServer,
    Guard,
    OtherOrigin,
    QuietHandler,
    watch_page,
)
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from support import ensure_agent_wheel

from local.testing import RUNNING, start_local_api


@pytest.fixture(scope="session")
def other_origin() -> Iterator[OtherOrigin]:
    handler = functools.partial(QuietHandler, directory=str(REPO_ROOT / "console"))
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="other-origin", daemon=True)
    thread.start()
    try:
        yield OtherOrigin(port)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def server(other_origin: OtherOrigin) -> Iterator[ConsoleServer]:
    """make run's stack, with the other origin allowed (HANGAR_PARAM_ConsoleOrigin) and fast agent intervals."""
    ensure_agent_wheel()
    api = start_local_api(extra_env={**FAST_INTERVALS, "HANGAR_PARAM_ConsoleOrigin": other_origin.allowed})
    try:
        match = DEV_KEY_RE.search(api.output())
        assert match, f"no dev API key in the banner:\n{api.output()}"
        yield ConsoleServer(api, match.group(1))
    finally:
        api.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """The one Chromium of the session (Debian's; Playwright's own browser download is never used)."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    created = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    created.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def guard() -> Guard:
    return Guard()


@pytest.fixture
def page(context: BrowserContext, guard: Guard) -> Iterator[Page]:
    opened = context.new_page()
    watch_page(opened, guard)
    yield opened
    assert guard.problems == [], "the page reported problems:\n" + "\n".join(guard.problems)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test gets the server's output (the end of it)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        for api in RUNNING:
            report.sections.append((f"python -m local on {api.url}", api.output()[-15000:] or "(none)"))
