"""Regenerate (or check) every chart's generated files, ``values.schema.json`` and ``VALUES.md``, from its
values.yaml and the library's schema definitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from homeci import paths
from homeci.chartdocs import generate, valuesdoc
from homeci.chartdocs import schema as schemas
from homeci.errors import HomeciError

LIBRARY = "homeci-lib"


def fragments_dir(root: Path) -> Path:
    return root / "charts" / LIBRARY / "schema"


@dataclass(frozen=True)
class Output:
    path: Path
    text: str

    def stale(self) -> bool:
        try:
            return self.path.read_text(encoding="utf-8") != self.text
        except FileNotFoundError:
            return True


def documented_charts(root: Path) -> list[Path]:
    """Every application chart (the library chart has no values)."""
    seen: dict[Path, Path] = {}
    for chart in paths.find_charts(root / "charts"):
        if (chart / "values.yaml").is_file() and chart.resolve() not in seen:
            seen[chart.resolve()] = chart
    return sorted(seen.values())


def _depends_on_library(chart: Path) -> bool:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8")) or {}
    return any(dep.get("name") == LIBRARY for dep in meta.get("dependencies") or [])


def outputs(root: Path) -> list[Output]:
    fragments = schemas.load_fragments(fragments_dir(root))
    result: list[Output] = []
    problems: list[str] = []
    for chart in documented_charts(root):
        rel = chart.relative_to(root)
        values_text = (chart / "values.yaml").read_text(encoding="utf-8")
        try:
            values = yaml.safe_load(values_text) or {}
        except yaml.YAMLError as exc:
            raise HomeciError(f"{rel}/values.yaml: not YAML ({exc}); fix it") from exc
        body, found = generate.properties(f"{rel}/values.yaml", values_text, values, fragments)
        problems += found
        if found:
            continue
        name = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))["name"]
        schema = schemas.whole(f"{name} values", body, fragments, _depends_on_library(chart))
        result.append(Output(chart / "values.schema.json", schemas.dumps(schema)))
        result.append(Output(chart / "VALUES.md", valuesdoc.render(name, values_text, values, schema)))
    if problems:
        raise HomeciError("; ".join(problems))
    return result
