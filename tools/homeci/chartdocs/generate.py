"""A chart's ``values.schema.json`` body, generated from its values.yaml alone.

Each key's schema is what its default value says, completed by the ``# @schema`` annotation above it:

* a string, boolean, integer or number default gives that ``type``;
* a mapping with keys gives a closed object (``additionalProperties: false``) whose properties are its
  keys, every one ``required`` (Helm merges the defaults, so a user never lacks one; a ``null`` removes
  it, and the schema refuses that);
* a list with items gives ``type: array`` and, when every item says the same, their schema as ``items``;
* ``{}``, ``[]`` and ``null`` say too little: such a key needs an annotation;
* an annotation's keywords are added to (or replace) the inferred ones — ``required: []`` removes the
  inferred list — unless it names the type itself (``type``, ``$ref``, ``anyOf`` or ``oneOf``): then the
  annotation is the key's whole schema and nothing below the key is read;
* the description is the comment above the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeci.chartdocs.annotations import AnnotationError, parse_annotation
from homeci.chartdocs.comments import KeyDoc, Path, key_docs

WHOLE = ("type", "$ref", "anyOf", "oneOf")
_SCALARS: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


@dataclass
class _Run:
    file: str  # the values.yaml path errors name
    docs: dict[Path, KeyDoc]
    definitions: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def where(self, line: int) -> str:
        return f"{self.file}:{line}" if line else self.file


def _scalar(value: Any) -> dict[str, Any] | None:
    for kind, name in _SCALARS:
        if isinstance(value, kind):
            return {"type": name}
    return None


def _infer(run: _Run, value: Any, path: Path, line: int, note: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the default value says about the key at ``path``; None (and a problem) when it says too little
    and the annotation ``note`` does not complete it (``items`` for [], a map's keywords for {})."""
    key = ".".join(path)
    if value == [] and "items" in note:
        return {"type": "array"}
    if value == {} and any(word in note for word in ("additionalProperties", "properties", "propertyNames")):
        return {"type": "object"}
    if isinstance(value, dict) and value:
        props = {str(k): _key(run, v, (*path, str(k))) for k, v in value.items()}
        return {"type": "object", "additionalProperties": False, "properties": props,
                "required": list(props)}
    if isinstance(value, list) and value:
        items = [_item(v) for v in value]
        if items[0] is not None and all(i == items[0] for i in items):
            return {"type": "array", "items": items[0]}
        run.problems.append(f"{run.where(line)}: key {key}: its items differ or are lists: say what they are "
                            f"with `# @schema items: {{...}}` above it")
        return None
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    hint = {"dict": "`# @schema type: object` (any keys) or a $ref such as `$ref: labels`",
            "list": "`# @schema items: {type: string}` (or the schema of its items)",
            "NoneType": "`# @schema type: [string, \"null\"]`",
            }.get(type(value).__name__, "`# @schema type: ...`")
    shown = {"dict": "{}", "list": "[]", "NoneType": "null"}.get(type(value).__name__, repr(value))
    run.problems.append(f"{run.where(line)}: key {key} defaults to {shown}, which does not say its type: "
                        f"annotate it, e.g. {hint}")
    return None


def _item(value: Any) -> dict[str, Any] | None:
    """An item's schema for a default list: scalars give their type, a mapping its closed keys."""
    if isinstance(value, dict) and value:
        props = {str(k): _item(v) for k, v in value.items()}
        if any(p is None for p in props.values()):
            return None
        return {"type": "object", "additionalProperties": False, "properties": props, "required": list(props)}
    return _scalar(value)


def _key(run: _Run, value: Any, path: Path) -> dict[str, Any]:
    """The schema of one key: description, then the inferred schema with the annotation applied."""
    doc = run.docs.get(path) or KeyDoc("", None, 0)
    key = ".".join(path)
    note: dict[str, Any] = {}
    if doc.annotation is not None:
        try:
            note = parse_annotation(doc.annotation, run.where(doc.annotation_line), run.definitions)
        except AnnotationError as exc:
            run.problems.append(str(exc))
        if "description" in note:
            run.problems.append(f"{run.where(doc.annotation_line)}: @schema of {key} has a description: "
                                f"write it as the comment above the key instead")
            note.pop("description")
    if any(word in note for word in WHOLE):
        schema = note
        below = [f"{run.where(d.annotation_line)}" for p, d in run.docs.items()
                 if p[: len(path)] == path and len(p) > len(path) and d.annotation is not None]
        if below:
            run.problems.append(f"{', '.join(below)}: @schema below {key}, whose own @schema names its type "
                                f"(so it is its whole schema): move these keywords into {key}'s annotation")
    else:
        schema = {**(_infer(run, value, path, doc.line, note) or {}), **note}
        if schema.get("required") == []:
            del schema["required"]
        unknown = [r for r in schema.get("required", []) if r not in (schema.get("properties") or {})]
        if unknown:
            run.problems.append(f"{run.where(doc.annotation_line)}: @schema of {key} requires "
                                f"{', '.join(unknown)}, which it does not have: fix `required`")
    if not doc.description:
        run.problems.append(f"{run.where(doc.line)}: key {key} has no comment above it (the schema and "
                            f"VALUES.md take their descriptions from it): document it")
        return schema
    return {"description": doc.description, **schema}


def properties(file: str, text: str, values: Mapping[str, Any],
               definitions: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the schema of the values' top level — a closed object — , the problems found: ``<file>:<line>:
    ...`` sentences that say what to do). ``file`` is the values.yaml path to name, ``definitions`` the
    names an annotation may ``$ref``."""
    run = _Run(file, key_docs(text), definitions)
    root = _infer(run, dict(values), (), 0, {}) if values else {
        "type": "object", "additionalProperties": False, "properties": {}}
    return root or {}, run.problems
