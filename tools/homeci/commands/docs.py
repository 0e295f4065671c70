"""``homeci docs [--check | --against REV]``: generate each chart's values.schema.json and VALUES.md from its
values.yaml (comments and ``# @schema`` annotations) and the library's schema definitions, check that the
checked-in copies are current, or compare the schemas with those of another git revision by what they
accept."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click

from homeci import paths
from homeci.chartdocs import build, compare
from homeci.errors import HomeciError


def _at_revision(root: Path, revision: str, path: Path) -> Any:
    """The JSON file ``path`` as it is at git ``revision``; None when it does not exist there."""
    rel = path.relative_to(root).as_posix()
    proc = subprocess.run(["git", "-C", str(root), "show", f"{revision}:{rel}"], capture_output=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip()
        if "exists on disk, but not in" in why or "does not exist in" in why:
            return None
        raise HomeciError(f"git show {revision}:{rel} failed ({why or 'no output'}): name a revision git "
                          f"knows")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise HomeciError(f"{rel} at {revision} is not JSON ({exc})") from exc


def _report_against(root: Path, revision: str) -> None:
    total = 0
    for out in build.outputs(root):
        if out.path.name != "values.schema.json":
            continue
        rel = out.path.relative_to(root)
        old = _at_revision(root, revision, out.path)
        if old is None:
            click.echo(f"{rel}: not at {revision}")
            continue
        new = json.loads(out.text)
        contract = compare.contract_differences(old, new)
        prose = compare.description_changes(old, new)
        total += len(contract)
        click.echo(f"{rel}: {len(contract)} contract differences, {len(prose)} descriptions changed")
        for diff in contract:
            click.echo(f"  {diff}")
        for diff in prose:
            click.echo(f"  description {diff}")
    click.echo(f"homeci docs: {total} contract differences against {revision}")


@click.command(name="docs")
@click.option("--check", is_flag=True, help="Change nothing; fail when a generated file is stale.")
@click.option("--against", metavar="REV",
              help="Change nothing; compare each generated values.schema.json with the one at git revision "
                   "REV by what it accepts (references resolved, descriptions listed apart).")
def command(check: bool, against: str | None) -> None:
    """Generate values.schema.json and VALUES.md for every chart from its values.yaml."""
    root = paths.repo_root()
    if against:
        _report_against(root, against)
        return
    stale = [out for out in build.outputs(root) if out.stale()]
    if check:
        if stale:
            names = ", ".join(str(out.path.relative_to(root)) for out in stale)
            raise HomeciError(f"generated files are stale or edited by hand: {names}; change values.yaml "
                              f"(comments, # @schema) or charts/homeci-lib/schema, run `homeci docs` and "
                              f"commit the result")
        click.echo("homeci docs: every generated file is current")
        return
    for out in stale:
        out.path.write_text(out.text, encoding="utf-8")
        click.echo(f"wrote {out.path.relative_to(root)}")
    if not stale:
        click.echo("homeci docs: nothing to change")
