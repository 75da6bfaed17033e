"""What `make run` serves besides the API: `GET /` (an index), `/openapi.json`, `/docs` (Swagger UI from
the pinned `swagger-ui-py` package, served from here: no CDN) and `/console/` (the files of a top-level
`console/` directory, or HANGAR_CONSOLE_DIR, when it exists). Every page carries security headers;
nothing loads from another origin. Answers None for any other path (the API's)."""

from __future__ import annotations

import html
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from werkzeug.security import safe_join

from local import REPO_ROOT
from local.gateway import HttpRequest, HttpResponse

# Swagger UI sets inline styles; the console gets the strict policy (no inline anything).
_CSP_BASE = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
CONSOLE_CSP = f"{_CSP_BASE}; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'"
DOCS_CSP = f"{_CSP_BASE}; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'"
DOCS_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hangar API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="icon" href="/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/start.js"></script></body></html>
"""
_INDEX_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hangar (local)</title></head>
<body><h1>Hangar, running locally</h1><ul>{items}</ul>
<p>The API is under <code>/api</code> and <code>/v1</code>; see the README.</p></body></html>
"""
_DOCS_START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'


def security_headers(csp: str) -> list[tuple[str, str]]:
    return [
        ("Content-Security-Policy", csp),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]


class Site:
    def __init__(self, repo_root: Path = REPO_ROOT) -> None:
        self.openapi_file = repo_root / "docs" / "openapi.json"
        self.console_dir = Path(os.environ.get("HANGAR_CONSOLE_DIR") or repo_root / "console")

    def handle(self, request: HttpRequest, base_url: str) -> HttpResponse | None:
        path, method = request.raw_path, request.method
        if method not in ("GET", "HEAD"):
            return None
        if path == "/":
            return self._page(self._index(), CONSOLE_CSP)
        if path == "/openapi.json":
            return self._openapi(base_url)
        if path in ("/docs", "/docs/"):
            return self._page(_DOCS_PAGE, DOCS_CSP)
        if path == "/docs/start.js":
            return _file_response(_DOCS_START.encode(), "text/javascript", DOCS_CSP)
        if path.startswith("/docs/") and path[6:] in DOCS_FILES:
            return self._static(_swagger_ui_dir(), path[6:], DOCS_CSP)
        if path == "/console":
            return HttpResponse(308, [("Location", "/console/"), *security_headers(CONSOLE_CSP)])
        if path.startswith("/console/") and self.console_dir.is_dir():
            return self._static(self.console_dir, path[len("/console/") :] or "index.html", CONSOLE_CSP)
        return None

    def _index(self) -> str:
        links = [("/docs", "API reference (Swagger UI)"), ("/openapi.json", "OpenAPI document")]
        if self.console_dir.is_dir():
            links.insert(0, ("/console/", "Console"))
        items = "".join(f'<li><a href="{href}">{html.escape(text)}</a></li>' for href, text in links)
        return _INDEX_PAGE.format(items=items)

    def _openapi(self, base_url: str) -> HttpResponse:
        if not self.openapi_file.is_file():
            return HttpResponse(404, [("Content-Type", "application/json")], b'{"message": "no docs/openapi.json"}')
        document: dict[str, Any] = json.loads(self.openapi_file.read_text())
        document["servers"] = [{"url": base_url, "description": "this make run"}]  # "Try it out" calls here
        return _file_response(json.dumps(document).encode(), "application/json", CONSOLE_CSP)

    @staticmethod
    def _page(text: str, csp: str) -> HttpResponse:
        return _file_response(text.encode(), "text/html; charset=utf-8", csp)

    @staticmethod
    def _static(directory: Path, name: str, csp: str) -> HttpResponse:
        from urllib.parse import unquote

        joined = safe_join(str(directory), unquote(name))
        if joined is None or not Path(joined).is_file():
            not_found = b'{"message": "Not found"}'
            return HttpResponse(404, [("Content-Type", "application/json"), *security_headers(csp)], not_found)
        content_type = mimetypes.guess_type(joined)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        return _file_response(Path(joined).read_bytes(), content_type, csp)


def _file_response(body: bytes, content_type: str, csp: str) -> HttpResponse:
    return HttpResponse(
        200, [("Content-Type", content_type), ("Cache-Control", "no-cache"), *security_headers(csp)], body
    )


def _swagger_ui_dir() -> Path:
    import swagger_ui

    return Path(swagger_ui.__file__).parent / "static"
