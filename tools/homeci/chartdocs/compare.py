"""Compare two values schemas by what they accept, not by how they are written.

Both are normalised first: every ``$ref`` is replaced by the definition it names (so a definition moved to
the library or renamed compares equal), descriptions and titles are set aside, and the order of
``required``, ``enum`` and ``type`` lists is ignored. What remains must be equal keyword by keyword;
descriptions are compared separately, because they may change without changing the contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from homeci.chartdocs.annotations import DEFS

_UNORDERED = ("required", "enum", "type")
_PROSE = ("description", "title")


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null",
            list: "array", dict: "object"}.get(type(value), "?")


def _implied_type(node: Mapping[str, Any]) -> bool:
    """True when ``node``'s ``type`` says nothing its ``enum`` does not (every value has that type)."""
    kind, values = node.get("type"), node.get("enum")
    return isinstance(kind, str) and isinstance(values, list) and bool(values) and all(
        _json_type(v) == kind for v in values)


def _resolve(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """``node`` with every reference replaced by its target: a ``$ref`` alone (prose aside) becomes the
    target's keywords, one with other keywords beside it keeps them beside the resolved target."""
    if depth > 50:
        raise ValueError("a $ref cycle: the schema refers to itself")
    if isinstance(node, list):
        return [_resolve(v, defs, depth) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    target: Any = None
    for key, value in node.items():
        if key == DEFS:
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(f"#/{DEFS}/"):
            found = defs.get(value.removeprefix(f"#/{DEFS}/"), {"$missing": value})
            target = _resolve(found, defs, depth + 1)
        elif key in _UNORDERED and isinstance(value, list):
            out[key] = sorted(value, key=lambda v: json.dumps(v, sort_keys=True))
        else:
            out[key] = _resolve(value, defs, depth)
    if _implied_type(out):
        del out["type"]
    if target is None:
        return out
    if all(k in _PROSE for k in out) and isinstance(target, dict):
        return {**target, **out}
    return {"$ref": target, **out}


def _contract(node: Any) -> Any:
    """``node`` without its prose."""
    if isinstance(node, list):
        return [_contract(v) for v in node]
    if isinstance(node, dict):
        return {k: _contract(v) for k, v in node.items()
                if not (k in _PROSE and isinstance(v, str)) and k != "$schema"}
    return node


def normalise(schema: Mapping[str, Any]) -> Any:
    """The schema with references resolved and list order ignored, prose included."""
    return _resolve(dict(schema), schema.get(DEFS) or {})


@dataclass(frozen=True)
class Difference:
    path: str  # JSON pointer-like path into the normalised schema
    old: Any
    new: Any

    def __str__(self) -> str:
        def show(v: Any) -> str:
            return "(absent)" if v is _ABSENT else json.dumps(v, ensure_ascii=False, sort_keys=True)[:300]
        return f"{self.path}: {show(self.old)} -> {show(self.new)}"


_ABSENT: Any = object()


def _diff(old: Any, new: Any, path: str) -> Iterator[Difference]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from _diff(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}/{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _diff(a, b, f"{path}/{i}")
    elif old is _ABSENT or new is _ABSENT or old != new or type(old) is not type(new):
        yield Difference(path or "/", old, new)


def contract_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Difference]:
    """Where the two schemas accept different values (keywords, bounds, patterns, refs' content...)."""
    return list(_diff(_contract(normalise(old)), _contract(normalise(new)), ""))


def _descriptions(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if isinstance(sub, dict):
                        yield f"{path}.{name}".lstrip("."), str(sub.get("description", ""))
                        yield from _descriptions(sub, f"{path}.{name}")
            elif key == "items":
                yield from _descriptions(value, f"{path}[]")
            elif key not in (DEFS, "$ref"):
                yield from _descriptions(value, path)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value, path)


def description_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Difference]:
    """Properties (outside definitions) whose own description differs."""
    before, after = dict(_descriptions(dict(old), "")), dict(_descriptions(dict(new), ""))
    return [Difference(p, before.get(p, _ABSENT), after.get(p, _ABSENT))
            for p in [*before, *(k for k in after if k not in before)]
            if before.get(p, "") != after.get(p, "")]
