"""The repository's documentation stands on its own: a user's clone has nothing outside it, so README.md,
agent/README.md, docs/*.md and the OpenAPI document never send a reader to a file that is not there
(`../shared/...`, "DESIGN §n"), never use the word "seed" unexplained, never talk about "this machine",
and every relative link points at a file (and heading) that exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DOCS = sorted([REPO_ROOT / "README.md", REPO_ROOT / "agent" / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
OPENAPI = REPO_ROOT / "docs" / "openapi.json"
OUTSIDE_REFERENCES = re.compile(r"\.\./shared|shared/seeds|DESIGN\.md|DESIGN §|DESIGN section", re.IGNORECASE)
# decisions.md says at its top what "the design" and "the seed documents" are; everywhere else "seed" is unexplained.
SEED_EXPLAINED_IN = {REPO_ROOT / "docs" / "decisions.md"}
SEED = re.compile(r"\bseed\b|\bseed 00\d", re.IGNORECASE)
THIS_MACHINE = re.compile(r"\bthis machine\b", re.IGNORECASE)
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
# The console's screenshots are written by `make browser-test` (tests/browser), which may not have run yet.
GENERATED = re.compile(r"^docs/console/[\w-]+\.png$")


def _name(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def _text(path: Path) -> str:
    """The document as a reader sees it (JSON decoded, so an escaped character reads as itself)."""
    text = path.read_text()
    return json.dumps(json.loads(text), ensure_ascii=False) if path.suffix == ".json" else text


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("path", [*USER_DOCS, OPENAPI], ids=_name)
def test_no_reference_outside_the_repository(path: Path) -> None:
    found = OUTSIDE_REFERENCES.findall(_text(path))
    assert not found, f"{_name(path)} cites what a clone does not have: {found}; cite docs/architecture.md"


@pytest.mark.parametrize("path", [p for p in [*USER_DOCS, OPENAPI] if p not in SEED_EXPLAINED_IN], ids=_name)
def test_no_unexplained_seed(path: Path) -> None:
    lines = [line for line in _text(path).splitlines() if SEED.search(line)]
    assert not lines, f"{_name(path)} says 'seed' without explaining it: {lines}"


@pytest.mark.parametrize("path", USER_DOCS, ids=_name)
def test_no_this_machine(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if THIS_MACHINE.search(line)]
    assert not lines, f"{_name(path)} talks about 'this machine' (whose?): {lines}"


@pytest.mark.parametrize("path", USER_DOCS, ids=_name)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text()
    broken = []
    for target in LINK.findall(text):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            if not GENERATED.match(_name(linked)):
                broken.append(target)
        elif anchor and linked.suffix == ".md":
            anchors = {_anchor(heading) for heading in HEADING.findall(linked.read_text())}
            if anchor not in anchors:
                broken.append(target)
    assert not broken, f"{_name(path)} links to what does not exist: {broken}"


def test_architecture_has_the_flow_picture() -> None:
    assert "```mermaid" in (REPO_ROOT / "docs" / "architecture.md").read_text()
    assert "```mermaid" in (REPO_ROOT / "README.md").read_text().split("\n## ", 1)[0], "the first screen's picture"
