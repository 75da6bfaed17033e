"""Browser tests of the console: one real `python -m local` (with a configured other console origin) and
one headless Chromium (Debian's, /usr/bin/chromium, driven by Playwright) for the whole session; each
test gets a fresh browser context (its own sessionStorage, cookies, permissions).

`page` fails its test on any console error, uncaught page error, failed request or HTTP error response,
unless the test said it expects it (`guard.expect(...)`). Screenshots go to .tools/screenshots/
(`make screenshots`: docs/console/).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright  # noqa: E402
from support import ensure_agent_wheel  # noqa: E402

from local.testing import RUNNING, LocalApi, start_local_api  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
]  # fmt: skip
# The tests leave the tracked docs/console/*.png alone; `make screenshots` points them there.
SCREENSHOTS = Path(os.environ.get("HANGAR_SCREENSHOTS_DIR") or _REPO_ROOT / ".tools" / "screenshots")
VIEWPORT = {"width": 1280, "height": 800}
DEV_KEY_RE = re.compile(r"Dev API key[^\n]*\n\s+(hgk_\S+)")
# The agent runs its jobs at once: heartbeat every 2 s, poll again 1 s after an empty poll.
FAST_INTERVALS = {"HANGAR_PARAM_HeartbeatIntervalSeconds": "2", "HANGAR_PARAM_PollIntervalSeconds": "1"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class OtherOrigin:
    """console/ served by a plain static server on another port: http://127.0.0.1:<port> is the origin the
    API is configured to allow (ConsoleOrigin); http://localhost:<port> is the same files from an origin
    it does not allow."""

    port: int

    @property
    def allowed(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def refused(self) -> str:
        return f"http://localhost:{self.port}"


@pytest.fixture(scope="session")
def other_origin() -> Iterator[OtherOrigin]:
    handler = functools.partial(_QuietHandler, directory=str(_REPO_ROOT / "console"))
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


@dataclass
class ConsoleServer:
    api: LocalApi
    dev_key: str

    @property
    def console_url(self) -> str:
        return f"{self.api.url}/console/"


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


@dataclass
class Guard:
    """What went wrong in the page: console errors, page errors, failed requests, HTTP errors."""

    problems: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """A problem matching `pattern` (a regex) is part of what the test checks, not a failure."""
        self.expected.append(re.compile(pattern))

    def report(self, problem: str) -> None:
        if not any(pattern.search(problem) for pattern in self.expected):
            self.problems.append(problem)


def _watch(page: Page, guard: Guard) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            guard.report(f"console {message.type}: {message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: guard.report(f"page error: {error}"))
    page.on("request", lambda request: guard.requests.append(request))

    def on_request_failed(request: Any) -> None:
        # ERR_ABORTED: a request still under way when the page reloaded or navigated away, not a failure.
        if request.failure != "net::ERR_ABORTED":
            guard.report(f"request failed: {request.method} {request.url}: {request.failure}")

    page.on("requestfailed", on_request_failed)
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and guard.report(f"HTTP {response.status}: {response.request.method} {response.url}")
        ),
    )


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
    _watch(opened, guard)
    yield opened
    assert guard.problems == [], "the page reported problems:\n" + "\n".join(guard.problems)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def sign_in(page: Page, server: ConsoleServer, key: str | None = None) -> None:
    page.goto(server.console_url)
    page.fill("#credential", key or server.dev_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Runners").wait_for()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test gets the server's output (the end of it)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        for api in RUNNING:
            report.sections.append((f"python -m local on {api.url}", api.output()[-15000:] or "(none)"))
