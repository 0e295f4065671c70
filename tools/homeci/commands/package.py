"""``homeci package [CHART...] [--repo-url URL] [--oci oci://...] [--dest dist]``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from homeci import packaging, paths, ui
from homeci.errors import UsageError


@click.command(name="package")
@click.argument("charts", nargs=-1)
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: dist/ in the checkout).")
@click.option("--repo-url", default=None, help="URL the classic repository is served from (index.yaml urls).")
@click.option("--merge-index", type=click.Path(path_type=Path), default=None,
              help="An existing index.yaml (e.g. the published one) to merge and check against.")
@click.option("--oci", default=None, metavar="oci://HOST/PATH", help="Also helm push every package there.")
def command(charts: tuple[str, ...], dest: Path | None, repo_url: str | None, merge_index: Path | None,
            oci: str | None) -> None:
    """Package CHARTS (default: every top-level chart under charts/) into dist/ with an index.yaml.

    A chart version already in dist/ or the merged index with different content is refused: bump
    `version` in its Chart.yaml. Identical content is a no-op.
    """
    selected = [paths.resolve_chart(c) for c in charts] if charts else packaging.publishable_charts()
    if not selected:
        raise UsageError(f"no charts under {paths.charts_dir()} to package")
    out = dest or paths.repo_root() / "dist"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--dest {out}: is a file, not a directory; give a directory for the archives "
                         "and index.yaml")
    with ui.step(f"package: {len(selected)} chart(s) into {out}"):
        results = packaging.package(selected, out, repo_url=repo_url, merge_index=merge_index, oci=oci)
    table = Table("chart", "version", "state", "archive", "sha256", *(["pushed"] if oci else []))
    for r in results:
        table.add_row(r.name, r.version, r.state, str(r.archive), r.digest[:16], *([r.pushed] if oci else []))
    ui.out.print(table)
    ui.out.print(f"index: {out / 'index.yaml'}", markup=False, soft_wrap=True)
