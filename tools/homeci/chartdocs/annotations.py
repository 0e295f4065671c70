"""``# @schema`` annotations: the part of a key's schema its default value cannot say.

An annotation is the last part of the comment block above a key: a line ``# @schema <yaml>`` and every
``#`` line after it up to the key, read as one YAML mapping of JSON Schema (draft-07) keywords::

    # Node port for HTTP (30000-32767).
    # @schema $ref: nodePort
    web: null

    # Attempts per API call.
    # @schema minimum: 1
    # maximum: 50
    attempts: 8

``$ref: <name>`` (at any depth) names a definition of the library chart, ``charts/homeci-lib/schema/
<name>.json``. This module parses and checks the text; :mod:`homeci.chartdocs.generate` combines it with
what the default value says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from homeci.errors import HomeciError

DEFS = "definitions"  # draft-07: Helm 3 validates with a draft-07 library

# Keywords an annotation may use: draft-07 validation keywords (no $id, no definitions of its own).
KEYWORDS = frozenset({
    "$ref", "description", "type", "enum", "const", "format", "pattern", "minLength", "maxLength",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "minItems",
    "maxItems", "uniqueItems", "properties", "required", "additionalProperties", "propertyNames",
    "minProperties", "maxProperties", "anyOf", "oneOf", "allOf", "not",
})
_ONE_SCHEMA = ("items", "propertyNames", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")


class AnnotationError(HomeciError):
    """An annotation that cannot be read; the message names the file and line."""


def _check(node: Any, where: str, definitions: Mapping[str, Any], at: str) -> dict[str, Any]:
    """``node`` as a schema with every ``$ref: <name>`` expanded; ``at`` is the keyword path for errors."""
    if not isinstance(node, dict):
        raise AnnotationError(f"{where}: @schema {at or 'annotation'} is {type(node).__name__}, not a "
                              f"mapping of JSON Schema keywords: write `key: value` lines such as "
                              f"`minimum: 1`")
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{at}.{key}" if at else str(key)
        if key not in KEYWORDS:
            raise AnnotationError(f"{where}: @schema {name}: {key!r} is not a JSON Schema keyword homeci "
                                  f"uses (one of {', '.join(sorted(KEYWORDS))}): fix the spelling")
        if key == "$ref":
            if not isinstance(value, str) or value not in definitions:
                known = ", ".join(sorted(definitions))
                raise AnnotationError(f"{where}: @schema {name}: {value!r} is no definition of "
                                      f"charts/homeci-lib/schema ({known}): use one of them or add "
                                      f"charts/homeci-lib/schema/{value}.json")
            out[key] = f"#/{DEFS}/{value}"
        elif key in _ONE_SCHEMA or (key == "additionalProperties" and not isinstance(value, bool)):
            out[key] = _check(value, where, definitions, name)
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                raise AnnotationError(f"{where}: @schema {name} must be a list of schemas, e.g. "
                                      f"[{{const: \"\"}}, {{$ref: dnsLabel}}]")
            out[key] = [_check(v, where, definitions, f"{name}[{i}]") for i, v in enumerate(value)]
        elif key == "properties":
            if not isinstance(value, dict):
                raise AnnotationError(f"{where}: @schema {name} must map property names to schemas")
            out[key] = {str(k): _check(v, where, definitions, f"{name}.{k}") for k, v in value.items()}
        elif key == "type":
            # YAML reads a bare null as None: `type: [integer, null]` means the JSON type "null"
            out[key] = [("null" if v is None else v) for v in value] if isinstance(value, list) else (
                "null" if value is None else value)
        elif key == "required" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise AnnotationError(f"{where}: @schema {name} must be a list of property names, e.g. [name]")
        else:
            out[key] = value
    return out


def parse_annotation(text: str, where: str, definitions: Mapping[str, Any]) -> dict[str, Any]:
    """The annotation ``text`` (from :func:`homeci.chartdocs.comments.key_docs`) as a schema fragment.
    ``where`` is ``<file>:<line>`` of its ``@schema`` line, named by every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", "") or exc).strip()
        raise AnnotationError(f"{where}: @schema is not YAML ({problem}): write one `key: value` per "
                              f"line after `# @schema`, indented as YAML, right above the key") from exc
    if data is None:
        raise AnnotationError(f"{where}: @schema is empty: give keywords such as `# @schema $ref: quantity`, "
                              f"or remove the line")
    return _check(data, where, definitions, "")
