"""Values files against ``values.schema.json`` (draft-07), the way Helm merges them.

Helm merges ``values.yaml`` with each ``-f`` file (maps merge key by key, anything else is replaced,
``null`` deletes a key) and, for every enabled subchart, merges the parent's ``<sub>:`` section and
``global:`` over the subchart's own ``values.yaml`` before checking the subchart's schema. This module
does the same, validates the merged values, and reports each error as
``<file>: <dotted.path>: <message>`` naming the file the offending key came from.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from homeci.errors import HomeciError


@dataclass(frozen=True)
class Layer:
    """One source of values: the file it came from and its data at this chart's level."""

    label: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class SchemaError:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '(root)'}: {self.message}"


def load_yaml(path: Path) -> dict[str, Any]:
    """A values file as a mapping (empty file → ``{}``); one-line errors for unreadable or bad YAML.

    Read once while the file is unchanged (a lint run reads each chart's values.yaml and Chart.yaml for
    every scenario): the mapping is shared, so callers must not change it (``merge`` copies)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise HomeciError(f"{path}: cannot read it ({exc.strerror}); check the path and permissions") \
            from None
    return _load_yaml(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _load_yaml(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise HomeciError(f"{path}: cannot read it ({exc.strerror}); check the path and permissions") \
            from None
    except UnicodeDecodeError as exc:
        raise HomeciError(f"{path}: not a text file (byte {exc.start} is not UTF-8); it must be YAML") \
            from None
    except yaml.reader.ReaderError as exc:
        raise HomeciError(f"{path}: not a text file (character {exc.character!r} at byte {exc.position}); "
                          "it must be YAML") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise HomeciError(f"{path}: not valid YAML{line}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HomeciError(f"{path}: top level must be a mapping of values, not {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge recursively, other values replace, ``null`` removes the key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merged(layers: list[Layer]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for layer in layers:
        result = merge(result, layer.data)
    return result


def _has(data: Any, path: list[Any]) -> bool:
    node = data
    for key in path:
        in_map = isinstance(node, Mapping) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_map or in_list:
            node = node[key]
        else:
            return False
    return True


def origin(layers: list[Layer], path: list[Any]) -> str:
    """The file that set ``path``: the last layer holding the longest prefix of it."""
    for depth in range(len(path), 0, -1):
        for layer in reversed(layers):
            if _has(layer.data, path[:depth]):
                return layer.label
    return layers[-1].label if layers else "values"


def dotted(path: list[Any]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def load_schema(chart: Path) -> dict[str, Any] | None:
    """The chart's values.schema.json, checked as draft-07 (cached while the file is unchanged)."""
    file = chart / "values.schema.json"
    if not file.is_file():
        return None
    stat = file.stat()
    return _load_schema(file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _load_schema(file: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    try:
        schema = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HomeciError(f"{file}: not a text file (byte {exc.start} is not UTF-8); it must be a JSON "
                          "schema") from None
    except json.JSONDecodeError as exc:
        raise HomeciError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg}); fix it") from None
    if not isinstance(schema, dict):
        raise HomeciError(f"{file}: must be a JSON object")
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise HomeciError(f"{file}: not a valid draft-07 schema at {dotted(list(exc.path))}: {exc.message}") \
            from None
    return schema


def _extra_keys(error: jsonschema.ValidationError) -> list[str]:
    """For an ``additionalProperties: false`` error: the keys that are not allowed."""
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if not isinstance(instance, Mapping):
        return []
    props = schema.get("properties", {}) or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    import re

    return [k for k in instance if k not in props and not any(re.search(p, str(k)) for p in patterns)]


# id(schema) -> (schema, its validator). Schemas come from load_schema's cache, so the same file gives
# the same object: no serialising a large schema on every call to find its validator. The identity check
# guards against a reused id.
_validators: dict[int, tuple[Mapping[str, Any], jsonschema.Draft7Validator]] = {}


def _validator(schema: Mapping[str, Any]) -> jsonschema.Draft7Validator:
    cached = _validators.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    validator = jsonschema.Draft7Validator(schema)
    if len(_validators) > 256:
        _validators.clear()
    _validators[id(schema)] = (schema, validator)
    return validator


# (validator, values as canonical JSON) -> valid. The umbrella's scenarios mostly leave a subchart's
# values as they are: each distinct set is validated once.
_verdicts: dict[tuple[int, str], bool] = {}


def _valid(validator: jsonschema.Draft7Validator, values: Mapping[str, Any]) -> bool:
    key = (id(validator), json.dumps(values, sort_keys=True, default=str))
    verdict = _verdicts.get(key)
    if verdict is None:
        verdict = _verdicts[key] = validator.is_valid(values)
        if len(_verdicts) > 4096:
            _verdicts.clear()
    return verdict


def validate_values(values: Mapping[str, Any], schema: Mapping[str, Any], layers: list[Layer],
                    prefix: str = "") -> list[SchemaError]:
    """All schema errors of ``values``, each attributed to a file and a full dotted path."""
    validator = _validator(schema)
    errors: list[SchemaError] = []
    if _valid(validator, values):
        return errors
    for err in sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(err.absolute_path)
        extras = _extra_keys(err) if err.validator == "additionalProperties" else []
        if extras:
            for key in extras:
                full = [*path, key]
                message = f"unknown key {key!r} (not in values.schema.json); remove it or fix its spelling"
                errors.append(SchemaError(origin(layers, full), _prefixed(prefix, full), message))
            continue
        errors.append(SchemaError(origin(layers, path), _prefixed(prefix, path), err.message))
    return errors


def _prefixed(prefix: str, path: list[Any]) -> str:
    if prefix and path and path[0] == "global":
        return dotted(path)  # globals are shared: report them at their top-level path
    return ".".join(p for p in (prefix, dotted(path)) if p)


def dependencies(chart: Path) -> list[tuple[str, Path, str | None]]:
    """(values key, subchart dir, condition) for each subchart shipped under ``charts/``."""
    meta = load_yaml(chart / "Chart.yaml")
    deps = meta.get("dependencies") or []
    by_name = {}
    for sub in sorted((chart / "charts").glob("*/Chart.yaml")):
        sub_meta = load_yaml(sub)
        if sub_meta.get("type") == "library":  # templates only: no values of its own to validate
            continue
        by_name[str(sub_meta.get("name", sub.parent.name))] = sub.parent
    out: list[tuple[str, Path, str | None]] = []
    seen: set[str] = set()
    for dep in deps:
        if not isinstance(dep, Mapping):
            continue
        name = str(dep.get("name", ""))
        if name in by_name:
            key = str(dep.get("alias") or name)
            out.append((key, by_name[name], dep.get("condition")))
            seen.add(name)
    # subcharts not declared in dependencies are still loaded by Helm
    out += [(name, path, None) for name, path in by_name.items() if name not in seen]
    return out


def _enabled(values: Mapping[str, Any], condition: str | None) -> bool:
    if not condition:
        return True
    for cond in condition.split(","):
        node: Any = values
        for part in cond.strip().split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, bool):
            return node
    return True


def check_chart(chart: Path, layers: list[Layer], prefix: str = "",
                display: Path | None = None) -> list[SchemaError]:
    """Schema errors of ``chart`` for value ``layers`` (lowest precedence first), subcharts included."""
    values = merged(layers)
    errors: list[SchemaError] = []
    schema = load_schema(chart)
    if schema is None:
        where = _rel(chart / "values.schema.json", display)
        errors.append(SchemaError(where, prefix, "missing; add a draft-07 values.schema.json for the chart"))
    else:
        errors += validate_values(values, schema, layers, prefix)
    for key, sub, condition in dependencies(chart):
        if not _enabled(values, condition):
            continue
        sub_values = sub / "values.yaml"
        sub_layers = [Layer(_rel(sub_values, display), load_yaml(sub_values) if sub_values.is_file() else {})]
        for layer in layers:
            section = layer.data.get(key)
            data: dict[str, Any] = dict(section) if isinstance(section, Mapping) else {}
            if isinstance(layer.data.get("global"), Mapping):
                data["global"] = merge(data.get("global") or {}, layer.data["global"])
            sub_layers.append(Layer(layer.label, data))
        errors += check_chart(sub, sub_layers, ".".join(p for p in (prefix, key) if p), display)
    return errors


def _rel(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


def check_scenario(chart: Path, scenario: Path | None, display: Path | None = None) -> list[SchemaError]:
    """Validate ``values.yaml`` (+ the scenario file merged over it) of ``chart`` and its subcharts."""
    base = chart / "values.yaml"
    layers = [Layer(_rel(base, display), load_yaml(base) if base.is_file() else {})]
    if scenario is not None:
        layers.append(Layer(_rel(scenario, display), load_yaml(scenario)))
    return check_chart(chart, layers, "", display)
