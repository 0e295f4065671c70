"""Assemble a chart's ``values.schema.json`` from its own properties, the shared fragments and the
values.yaml comments.

The checked-in schema is both the source and the result: a maintainer edits its ``properties``; this
module (1) replaces every shared definition (``#/definitions/<name>`` where the library chart has a
fragment ``<name>.json``) with the fragment, and drops definitions nothing refers to, (2) gives every
property without a ``description`` the comment above its key in values.yaml. A property that has neither
is reported, so every key of every chart stays documented.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeci.chartdocs.comments import key_comments
from homeci.errors import HomeciError

DEFS = "definitions"  # draft-07: Helm 3 validates with a draft-07 library


@dataclass
class Assembled:
    schema: dict[str, Any]
    undocumented: list[str] = field(default_factory=list)


def load_fragments(folder: Path) -> dict[str, Any]:
    """Every ``<name>.json`` in the fragments folder, by name."""
    fragments: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            fragments[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HomeciError(f"{path}: not a readable JSON schema fragment ({exc}); fix the file") from exc
    return fragments


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(f"#/{DEFS}/"):
            yield ref.removeprefix(f"#/{DEFS}/")
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _used_definitions(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> list[str]:
    """Names of definitions reachable from the schema's properties, in first-use order."""
    seen: list[str] = []
    todo = list(_refs({k: v for k, v in schema.items() if k != DEFS}))
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        if name not in definitions:
            raise HomeciError(f"the schema refers to #/{DEFS}/{name}, which is neither in the chart's "
                              f"{DEFS} nor a shared fragment: add charts/homeci-lib/schema/{name}.json")
        seen.append(name)
        todo.extend(_refs(definitions[name]))
    return seen


def _describe(node: dict[str, Any], path: tuple[str, ...], comments: Mapping[tuple[str, ...], str],
              undocumented: list[str]) -> dict[str, Any]:
    props = node.get("properties")
    if isinstance(props, dict):
        new_props: dict[str, Any] = {}
        for key, sub in props.items():
            if not isinstance(sub, dict):
                new_props[key] = sub
                continue
            sub_path = (*path, key)
            sub = _describe(sub, sub_path, comments, undocumented)
            if not sub.get("description"):
                text = comments.get(sub_path, "")
                if text:
                    sub = {"description": text, **{k: v for k, v in sub.items() if k != "description"}}
                elif "$ref" not in sub:
                    undocumented.append(".".join(sub_path))
            new_props[key] = sub
        node = {**node, "properties": new_props}
    return node


def assemble(schema: Mapping[str, Any], fragments: Mapping[str, Any], values_text: str) -> Assembled:
    local = dict(schema.get(DEFS) or {})
    available = {**local, **fragments}
    used = _used_definitions(schema, available)
    undocumented: list[str] = []
    own = {k: v for k, v in schema.items() if k != DEFS}
    body = _describe(own, (), key_comments(values_text), undocumented)
    out = dict(body)
    if used:
        # definitions first after the header keys, as the hand-written schemas had them
        ordered = {name: available[name] for name in sorted(used)}
        head = {k: v for k, v in out.items() if k in ("$schema", "$id", "title", "description", "type",
                                                      "additionalProperties")}
        tail = {k: v for k, v in out.items() if k not in head}
        out = {**head, DEFS: ordered, **tail}
    return Assembled(out, undocumented)


def dumps(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
