"""What the browser tests share besides their fixtures (tests/browser/conftest.py): the Chromium it
launches, the console server and the other origin, the page guard, screenshots and signing in. Test
modules import these from here, never from `conftest` (pytest keeps one module of that name at a time,
so `from conftest import` would find another directory's conftest when suites run together).
"""

from __future__ import annotations

import http.server
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import ConsoleMessage, Page  # noqa: E402

from local.testing import LocalApi  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
]  # fmt: skip
# The tests leave the tracked docs/console/*.png alone; `make screenshots` points them there.
SCREENSHOTS = Path(os.environ.get("HANGAR_SCREENSHOTS_DIR") or REPO_ROOT / ".tools" / "screenshots")
VIEWPORT = {"width": 1280, "height": 800}
DEV_KEY_RE = re.compile(r"Dev API key[^\n]*\n\s+(hgk_\S+)")
# The agent runs its jobs at once: heartbeat every 2 s, poll again 1 s after an empty poll.
FAST_INTERVALS = {"HANGAR_PARAM_HeartbeatIntervalSeconds": "2", "HANGAR_PARAM_PollIntervalSeconds": "1"}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
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


@dataclass
class ConsoleServer:
    api: LocalApi
    dev_key: str

    @property
    def console_url(self) -> str:
        return f"{self.api.url}/console/"


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


def watch_page(page: Page, guard: Guard) -> None:
    """Report what goes wrong in `page` to `guard`."""

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


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def sign_in(page: Page, server: ConsoleServer, key: str | None = None) -> None:
    page.goto(server.console_url)
    page.fill("#credential", key or server.dev_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Runners").wait_for()
