"""Every relative link of the Markdown documentation reaches a file that exists, and every ``#anchor`` a
heading of that file, as a forge (GitHub's slug rules) renders it.

Checked: README.md, CONTRIBUTING.md, docs/*.md and each chart's README.md. Links inside fenced code blocks and
inline code are not links; absolute URLs (``https:``, ``mailto:``) are not checked here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from homeci_testing.support import ROOT


def documents() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "charts").glob("*/README.md")),
             *sorted((ROOT / "charts" / "homeci-umbrella" / "charts").glob("*/README.md"))]
    return [p for p in found if p.is_file()]


FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); the text may hold one level of brackets (e.g. an image inside a link).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+(?:\([^()\s]*\)[^()\s>]*)*)>?"
                  r"(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    line: int
    target: str


def _prose_lines(text: str, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code removed unless ``keep_code``."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            continue
        out.append((number, line if keep_code else INLINE_CODE.sub("", line)))
    return out


def links(text: str) -> list[Link]:
    found: list[Link] = []
    for number, line in _prose_lines(text):
        found += [Link(number, m.group(1)) for m in LINK.finditer(line)]
        ref = REFERENCE_DEF.match(line)
        if ref:
            found.append(Link(number, ref.group(1)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lowercased, punctuation other than hyphens and
    spaces removed, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a forge makes for ``text``: headings (duplicates get -1, -2, ...) and HTML anchors."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in _prose_lines(text, keep_code=True):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def problems(doc: Path, text: str | None = None) -> list[str]:
    """What is broken in ``doc``'s links (``text``: its content, default the file's), one line each."""
    text = doc.read_text() if text is None else text
    rel = doc.relative_to(ROOT)
    out: list[str] = []
    for link in links(text):
        target = link.target
        if SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        if path_part:
            dest = (doc.parent / path_part).resolve()
            if not dest.exists():
                out.append(f"{rel}:{link.line}: link ({target}): {path_part} does not exist "
                           f"(looked for {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
                continue
            if ROOT not in dest.parents and dest != ROOT:
                out.append(f"{rel}:{link.line}: link ({target}) leaves the repository")
                continue
        else:
            dest = doc
        if not anchor:
            continue
        if dest.is_dir() or dest.suffix.lower() != ".md":
            out.append(f"{rel}:{link.line}: link ({target}): #{anchor} points into {dest.name}, which has no "
                       "Markdown headings")
            continue
        have = anchors(text if dest == doc.resolve() else dest.read_text())
        if anchor not in have:
            near = sorted(a for a in have if a.split("-")[0] == anchor.split("-")[0])[:5]
            out.append(f"{rel}:{link.line}: link ({target}): {dest.relative_to(ROOT)} has no heading "
                       f"#{anchor}" + (f" (similar: {', '.join(near)})" if near else ""))
    return out


DOCS = documents()


def test_the_documentation_is_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    for want in ("README.md", "CONTRIBUTING.md", "docs/README.md", "charts/homeci-umbrella/README.md",
                 "charts/drone-pipelines/README.md"):
        assert want in names, f"{want} is not among the checked documents: {sorted(names)}"


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    found = problems(doc)
    assert not found, "broken links:\n" + "\n".join(found)


@pytest.mark.parametrize(("heading", "anchor"), [
    ("k3s / kind notes", "k3s--kind-notes"),
    ("The `homeci` CLI", "the-homeci-cli"),
    ("Operations: backup, restore, status", "operations-backup-restore-status"),
    ("Traefik (`traefik:v3.7.15`)", "traefik-traefikv3715"),
    ("Inputs (`data:`)", "inputs-data"),
    ("Availability (`*.podDisruptionBudget`)", "availability-poddisruptionbudget"),
    ("A repository whose first push is not `main`", "a-repository-whose-first-push-is-not-main"),
])
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_duplicate_headings_are_numbered() -> None:
    text = "# Title\n\n## Usage\n\n## Usage\n\n```sh\n# Usage\n```\n\n## Usage\n"
    assert anchors(text) == {"title", "usage", "usage-1", "usage-2"}


def test_a_broken_link_is_reported_with_file_line_and_what_is_missing() -> None:
    doc = ROOT / "docs" / "README.md"
    text = ("# A\n\nsee [x](#nowhere), [y](missing.md), [a](#a) and `[z](#in-code)`\n\n"
            "```\n[w](#in-fence)\n```\n")
    assert problems(doc, text) == [
        "docs/README.md:3: link (#nowhere): docs/README.md has no heading #nowhere",
        "docs/README.md:3: link (missing.md): missing.md does not exist (looked for docs/missing.md)",
    ]
