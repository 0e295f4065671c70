"""Helm's own schema refusals, each mapped to the values file and the full dotted key that caused it.

When values break ``values.schema.json``, ``helm template``/``install`` print::

    Error: values don't meet the specifications of the schema(s) in the following chart(s):
    registry:
    - at '/persistence/size': got number, want string

(older Helm 3 releases print ``- persistence.size: Invalid type...``). The path is relative to the chart
named above it, and nothing says which file the value came from. :func:`explain` keeps Helm's words and
adds both, the way ``homeci lint`` reports its own schema check: ``<file>: <dotted.key>: <message>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeci.lint.values import Layer, SchemaError, dependencies, dotted, load_yaml, merged, origin

MARKER = "values don't meet the specifications of the schema"
_CHART = re.compile(r"^(?P<name>[A-Za-z0-9][-A-Za-z0-9_.]*):$")
_AT = re.compile(r"^- at '(?P<pointer>[^']*)': (?P<message>.*)$")   # Helm >= 3.18 and Helm 4
_OLD = re.compile(r"^- (?P<path>[^:\s]*): (?P<message>.*)$")      # older Helm 3 (gojsonschema)
_PATTERN = re.compile(r"does not match pattern '(?P<pattern>.*)'$")
_EXTRA = re.compile(r"additional propert(?:y|ies) (?P<keys>'[^']*'(?:, '[^']*')*) not allowed")


@dataclass(frozen=True)
class Refusal:
    """One line of Helm's refusal: the chart it names, the path inside that chart's values, Helm's words."""

    chart: str
    path: tuple[str, ...]
    message: str


def parse(stderr: str) -> list[Refusal]:
    """Helm's schema refusals in ``stderr`` (empty when the failure is something else)."""
    lines = stderr.splitlines()
    start = next((i for i, ln in enumerate(lines) if MARKER in ln), None)
    if start is None:
        return []
    found: list[Refusal] = []
    chart = ""
    for raw in lines[start + 1:]:
        line = raw.strip()
        if not line:
            continue
        header = _CHART.match(line)
        at, old = _AT.match(line), _OLD.match(line)
        if header and not line.startswith("- "):
            chart = header["name"]
        elif at:
            parts = tuple(_unescape(p) for p in at["pointer"].split("/")[1:])
            found.append(Refusal(chart, parts, at["message"].strip()))
        elif old:
            path = old["path"]
            parts = () if path in ("", "(root)") else tuple(path.split("."))
            found.append(Refusal(chart, parts, old["message"].strip()))
        elif found and raw[:1].isspace():
            last = found[-1]  # an indented continuation of the previous message
            found[-1] = Refusal(last.chart, last.path, f"{last.message} {line}")
    return found


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def chart_prefixes(chart: Path) -> dict[str, tuple[str, ...]]:
    """Chart name (and alias) → the key path of its values inside the top chart's values."""
    out: dict[str, tuple[str, ...]] = {}

    def walk(directory: Path, prefix: tuple[str, ...]) -> None:
        meta = load_yaml(directory / "Chart.yaml")
        out.setdefault(str(meta.get("name", directory.name)), prefix)
        for key, sub, _ in dependencies(directory):
            out.setdefault(key, (*prefix, key))
            walk(sub, (*prefix, key))

    walk(chart, ())
    return out


def set_layers(pairs: Sequence[str]) -> list[Layer]:
    """Each ``--set`` argument as a values layer labelled with it (Helm's syntax: ``a.b=1,c[0]=x``, with
    ``\\.`` and ``\\,`` escaped)."""
    return [Layer(f"--set {chunk}", _set_data(chunk)) for chunk in pairs]


def _set_data(chunk: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for pair in re.split(r"(?<!\\),", chunk):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            continue
        path: list[str] = []
        for part in re.split(r"(?<!\\)\.", key):
            name, _, index = part.replace("\\.", ".").partition("[")
            path.append(name)
            if index:
                path.append(index.rstrip("]"))
        node: Any = data
        for step in path[:-1]:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return data


def layers_for(chart: Path, values_files: Sequence[Path], sets: Sequence[str],
               display: Path | None = None) -> list[Layer]:
    """Every source of values, lowest precedence first: subchart defaults, the chart's values.yaml, each
    ``-f`` file, then ``--set``; subchart defaults are nested under their key as Helm does."""
    layers: list[Layer] = []

    def subcharts(directory: Path, prefix: tuple[str, ...]) -> None:
        for key, sub, _ in dependencies(directory):
            path = (*prefix, key)
            subcharts(sub, path)
            file = sub / "values.yaml"
            if file.is_file():
                data: Any = load_yaml(file)
                for step in reversed(path):
                    data = {step: data}
                layers.append(Layer(_shown(file, display), data))

    subcharts(chart, ())
    top = chart / "values.yaml"
    if top.is_file():
        layers.append(Layer(_shown(top, display), load_yaml(top)))
    layers += [Layer(str(f), load_yaml(Path(f))) for f in values_files]
    layers += set_layers(sets)
    return layers


def _shown(path: Path, display: Path | None) -> str:
    if display is not None:
        try:
            return str(path.resolve().relative_to(display.resolve()))
        except ValueError:
            pass
    return str(path)


def _typed(values: Any, path: Sequence[str]) -> list[Any]:
    """JSON-pointer segments as keys, with list indices as ints where the values hold a list."""
    out: list[Any] = []
    node = values
    for seg in path:
        if isinstance(node, list) and seg.isdigit():
            out.append(int(seg))
            node = node[int(seg)] if int(seg) < len(node) else None
        else:
            out.append(seg)
            node = node.get(seg) if isinstance(node, Mapping) else None
    return out


def _value_at(values: Any, path: Sequence[Any]) -> Any:
    node = values
    for seg in path:
        if isinstance(node, Mapping):
            node = node.get(seg)
        elif isinstance(node, list) and isinstance(seg, int) and seg < len(node):
            node = node[seg]
        else:
            return None
    return node


_DECIMAL = re.compile(r"^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$")


def _whole_number(message: str, value: Any) -> str:
    """Helm says "got string, want integer" for ``--set replicas=1.5`` (--set keeps decimals as text) and
    "got number" for 1.5 in a file; either way the user gave a decimal where a whole number belongs."""
    if "want integer" not in message:
        return message
    if isinstance(value, float) or (isinstance(value, str) and _DECIMAL.match(value)):
        return f"{value} is not a whole number: give an integer"
    return message


def explain(chart: Path, values_files: Sequence[Path], sets: Sequence[str], stderr: str,
            display: Path | None = None) -> list[SchemaError]:
    """Helm's refusals in ``stderr`` as ``file: dotted.key: Helm's message`` (empty if there are none)."""
    refusals = parse(stderr)
    if not refusals:
        return []
    prefixes = chart_prefixes(chart)
    layers = layers_for(chart, values_files, sets, display)
    values = merged(layers)
    described = pattern_descriptions(chart)
    errors: list[SchemaError] = []
    for r in refusals:
        r = Refusal(r.chart, r.path, readable(r.message, described))
        local = list(r.path)
        prefix = [] if local[:1] == ["global"] else list(prefixes.get(r.chart, ()))
        extra = _EXTRA.search(r.message)
        keys = re.findall(r"'([^']*)'", extra["keys"]) if extra else [None]
        for key in keys:
            full = _typed(values, [*prefix, *local, *([key] if key is not None else [])])
            message = _whole_number(r.message, _value_at(values, full))
            errors.append(SchemaError(origin(layers, full), dotted(full), message))
    return errors


def _nodes(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def pattern_descriptions(chart: Path) -> dict[str, str]:
    """pattern -> description of every schema node that has both, in the chart and the charts it carries."""
    found: dict[str, str] = {}
    for path in sorted(chart.rglob("values.schema.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        for node in _nodes(schema):
            pattern, text = node.get("pattern"), node.get("description")
            if isinstance(pattern, str) and isinstance(text, str) and text:
                found.setdefault(pattern, text)
    return found


def readable(message: str, described: Mapping[str, str]) -> str:
    """Helm's "'x' does not match pattern '<regex>'" becomes "'x' does not match: <what the schema says the
    value must be>" when the schema describes that pattern; other messages are kept as Helm wrote them."""
    match = _PATTERN.search(message)
    if not match:
        return message
    printed = match["pattern"]
    text = described.get(printed) or described.get(printed.replace("\\\\", "\\"))
    if not text:
        return message
    return f"{message[: match.start()]}is not accepted: {text.rstrip('.')}"
