"""Every chart's values.schema.json is generated from its values.yaml (``homeci docs``), never edited in
place, and documents every property it declares — nested ones and the keys of list items included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeci.chartdocs import build

from .conftest import ROOT

CHARTS = build.documented_charts(ROOT)
OUTPUTS = {out.path: out.text for out in build.outputs(ROOT)}


def _ids(charts: list[Path]) -> list[str]:
    return [str(c.relative_to(ROOT / "charts")) for c in charts]


def _undescribed(node: Any, path: str) -> Iterator[str]:
    """Dotted paths (``a.b``, ``list[].key``) of properties without a description, outside definitions."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "definitions":
                continue
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    where = f"{path}.{name}" if path else name
                    if isinstance(sub, dict) and not str(sub.get("description", "")).strip():
                        yield where
                    yield from _undescribed(sub, where)
            elif key == "items":
                yield from _undescribed(value, f"{path}[]")
            else:
                yield from _undescribed(value, path)
    elif isinstance(node, list):
        for value in node:
            yield from _undescribed(value, path)


@pytest.mark.parametrize("chart", CHARTS, ids=_ids(CHARTS))
def test_every_property_has_a_description(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text(encoding="utf-8"))
    missing = list(_undescribed(schema, ""))
    assert not missing, (f"{chart.relative_to(ROOT)}/values.schema.json: properties without a description: "
                         f"{', '.join(missing)} (comment the key in values.yaml; a list item's keys take "
                         f"`description:` in the key's # @schema items)")


def test_the_walk_sees_list_items_and_alternatives() -> None:
    schema = {"properties": {"a": {"description": "A.", "items": {"properties": {"x": {"type": "string"}}}},
                             "b": {"description": "B.", "anyOf": [{"properties": {"y": {}}}]}},
              "definitions": {"d": {"properties": {"z": {}}}}}
    assert list(_undescribed(schema, "")) == ["a[].x", "b.y"]


@pytest.mark.parametrize("chart", CHARTS, ids=_ids(CHARTS))
@pytest.mark.parametrize("name", ["values.schema.json", "VALUES.md"])
def test_generated_files_are_current(chart: Path, name: str) -> None:
    path = chart / name
    assert OUTPUTS[path] == path.read_text(encoding="utf-8"), (
        f"{path.relative_to(ROOT)} differs from what `homeci docs` generates from values.yaml: it was edited "
        f"by hand or values.yaml changed; put the change in values.yaml (comment, # @schema) and run "
        f"`homeci docs`")
