"""``homeci docs [--check]``: regenerate each chart's values.schema.json (shared fragments, descriptions
from values.yaml comments) and VALUES.md, or check that the checked-in copies are current."""

from __future__ import annotations

import click

from homeci import paths
from homeci.chartdocs import build
from homeci.errors import HomeciError


@click.command(name="docs")
@click.option("--check", is_flag=True, help="Change nothing; fail when a generated file is stale.")
def command(check: bool) -> None:
    """Generate values.schema.json definitions/descriptions and VALUES.md for every chart."""
    root = paths.repo_root()
    stale = [out for out in build.outputs(root) if out.stale()]
    if check:
        if stale:
            names = ", ".join(str(out.path.relative_to(root)) for out in stale)
            raise HomeciError(f"generated files are stale: {names}; run `homeci docs` and commit the result")
        click.echo("homeci docs: every generated file is current")
        return
    for out in stale:
        out.path.write_text(out.text, encoding="utf-8")
        click.echo(f"wrote {out.path.relative_to(root)}")
    if not stale:
        click.echo("homeci docs: nothing to change")
