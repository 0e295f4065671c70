"""Regenerate (or check) every chart's generated files: ``values.schema.json`` and ``VALUES.md``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from homeci import paths
from homeci.chartdocs import schema as schemas
from homeci.chartdocs import valuesdoc
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


def outputs(root: Path) -> list[Output]:
    fragments = schemas.load_fragments(fragments_dir(root))
    result: list[Output] = []
    problems: list[str] = []
    for chart in documented_charts(root):
        rel = chart.relative_to(root)
        values_text = (chart / "values.yaml").read_text(encoding="utf-8")
        schema_path = chart / "values.schema.json"
        try:
            source = json.loads(schema_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise HomeciError(f"{schema_path.relative_to(root)}: not readable JSON ({exc}); fix it") from exc
        assembled = schemas.assemble(source, fragments, values_text)
        problems += [f"{rel}/values.yaml: key {key} has no comment above it (the schema and VALUES.md take "
                     f"their descriptions from it): document it" for key in assembled.undocumented]
        result.append(Output(schema_path, schemas.dumps(assembled.schema)))
        name = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))["name"]
        values = yaml.safe_load(values_text) or {}
        doc = valuesdoc.render(name, values_text, values, assembled.schema)
        result.append(Output(chart / "VALUES.md", doc))
    if problems:
        raise HomeciError("; ".join(problems))
    return result
