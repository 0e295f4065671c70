"""A chart's whole ``values.schema.json``: the header, the definitions its properties use (copied from
the library chart's ``charts/homeci-lib/schema/<name>.json``) and the properties
:mod:`homeci.chartdocs.generate` wrote from values.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from homeci.chartdocs.annotations import DEFS
from homeci.errors import HomeciError

DRAFT = "http://json-schema.org/draft-07/schema#"

# Helm adds a section named after each dependency to the values it validates, the library's included.
LIBRARY_PROPERTY = {
    "description": "The section Helm adds for the homeci-lib library chart (shared named templates; it "
                   "reads no values of its own).",
    "type": "object",
}


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


def used_definitions(node: Any, definitions: Mapping[str, Any]) -> list[str]:
    """Names of the definitions ``node`` refers to, directly or through another definition, sorted."""
    seen: set[str] = set()
    todo = list(_refs(node))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in definitions:
            raise HomeciError(f"the schema refers to #/{DEFS}/{name}, which is no definition of the library: "
                              f"add charts/homeci-lib/schema/{name}.json")
        seen.add(name)
        todo.extend(_refs(definitions[name]))
    return sorted(seen)


def whole(title: str, body: Mapping[str, Any], fragments: Mapping[str, Any],
          library: bool) -> dict[str, Any]:
    """The schema file: draft-07 header, used definitions, then ``body`` (a closed object's type,
    properties and required) plus the library's section when the chart depends on it."""
    props = dict(body.get("properties") or {})
    if library:
        props["homeci-lib"] = LIBRARY_PROPERTY
    out: dict[str, Any] = {"$schema": DRAFT, "title": title, "type": "object", "additionalProperties": False}
    used = used_definitions(props, fragments)
    if used:
        out[DEFS] = {name: fragments[name] for name in used}
    out["properties"] = props
    if body.get("required"):
        out["required"] = list(body["required"])
    return out


def dumps(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
