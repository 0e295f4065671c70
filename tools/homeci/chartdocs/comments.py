"""The comment written right above each key of a values.yaml, by dotted path.

values.yaml files in this repository follow one style (traefik-helm-chart's): every key has its
documentation in ``#`` lines directly above it, at the key's indentation, with no blank line between.
Sequence items and block scalars are values, not keys, and are skipped.
"""

from __future__ import annotations

import re

Path = tuple[str, ...]

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+|\"[^\"]+\"|'[^']+'):(?:\s+(?P<rest>.*))?$")


def key_comments(text: str) -> dict[Path, str]:
    """Map each mapping key's path to the comment block right above it ("" when it has none)."""
    out: dict[Path, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    skip_deeper_than: int | None = None  # inside a block scalar or a sequence item
    for raw in text.splitlines():
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
            pending.append(stripped[1:].strip())
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
        out[path] = " ".join(part for part in pending if part)
        pending = []
        rest = (match.group("rest") or "").split(" #")[0].strip()
        if rest.startswith(("|", ">")):
            skip_deeper_than = indent
        elif not rest:
            stack.append((indent, key))
    return out
