"""The comment written right above each key of a values.yaml, by dotted path.

values.yaml files in this repository follow one style (traefik-helm-chart's): every key has its
documentation in ``#`` lines directly above it, at the key's indentation, with no blank line between.
The block may end with a type annotation: a line ``# @schema <yaml>`` and any ``#`` lines after it up to
the key, read together as one YAML mapping (see :mod:`homeci.chartdocs.annotations`). Sequence items and
block scalars are values, not keys, and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Path = tuple[str, ...]

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+|\"[^\"]+\"|'[^']+'):(?:\s+(?P<rest>.*))?$")
MARK = "@schema"


@dataclass(frozen=True)
class KeyDoc:
    """What the lines above one key say: its description, its ``@schema`` annotation text (``None``
    without one), the 1-based line of the key and of the annotation's first line."""

    description: str
    annotation: str | None
    line: int
    annotation_line: int = 0


def _continued(text: str) -> str:
    """A later line of an annotation: YAML as written after ``# `` (its indentation kept), or after a
    repeated ``# @schema``."""
    line = text[1:] if text.startswith(" ") else text
    if line == MARK or line.startswith(MARK + " "):
        return line[len(MARK) + 1:]
    return line


def _split(block: list[tuple[int, str]]) -> tuple[str, str | None, int]:
    """(description, annotation text, annotation line) of a comment block of (line number, text after #)."""
    for index, (number, text) in enumerate(block):
        stripped = text.strip()
        if stripped == MARK or stripped.startswith(MARK + " "):
            first = stripped[len(MARK):].strip()
            rest = [_continued(t) for _, t in block[index + 1:]]
            description = " ".join(t.strip() for _, t in block[:index] if t.strip())
            return description, "\n".join([first, *rest]), number
    return " ".join(t.strip() for _, t in block if t.strip()), None, 0


def key_docs(text: str) -> dict[Path, KeyDoc]:
    """Map each mapping key's path to what the comment block right above it says."""
    out: dict[Path, KeyDoc] = {}
    stack: list[tuple[int, str]] = []
    pending: list[tuple[int, str]] = []
    skip_deeper_than: int | None = None  # inside a block scalar or a sequence item
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped:
            pending = []
            continue
        if skip_deeper_than is not None:
            if indent > skip_deeper_than or (indent == skip_deeper_than and stripped.startswith("- ")):
                continue
            skip_deeper_than = None
        if stripped.startswith("#"):
            pending.append((number, stripped[1:]))
            continue
        if stripped.startswith("-"):
            skip_deeper_than = indent
            pending = []
            continue
        match = _KEY.match(line)
        if match is None:
            pending = []
            continue
        key = match.group("key").strip("\"'")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key)
        description, annotation, annotation_line = _split(pending)
        out[path] = KeyDoc(description, annotation, number, annotation_line)
        pending = []
        rest = (match.group("rest") or "").split(" #")[0].strip()
        if rest.startswith(("|", ">")):
            skip_deeper_than = indent
        elif not rest:
            stack.append((indent, key))
    return out


def key_comments(text: str) -> dict[Path, str]:
    """Map each mapping key's path to the comment block right above it ("" when it has none), without
    its ``@schema`` annotation."""
    return {path: doc.description for path, doc in key_docs(text).items()}
