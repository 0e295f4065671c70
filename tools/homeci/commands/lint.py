"""``homeci lint [CHART...]``."""

from __future__ import annotations

from pathlib import Path

import click

from homeci import paths, ui
from homeci.errors import HomeciError, UsageError
from homeci.lint import summary
from homeci.lint.runner import Linter


def select_charts(names: tuple[str, ...]) -> list[Path]:
    """The charts to lint: the named ones (name under charts/ or a path), else every chart."""
    if names:
        return [paths.resolve_chart(n) for n in names]
    charts = paths.find_charts()
    if not charts:
        raise UsageError(f"no charts under {paths.charts_dir()}: add one or name a chart directory")
    return charts


@click.command(name="lint")
@click.argument("charts", nargs=-1)
@click.option("--helm", "majors", type=click.Choice(["3", "4"]), multiple=True,
              help="Helm major version(s) to lint with (default: both).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None,
              help="Parallel jobs (default: 2 × CPU cores, at most 8).")
def command(charts: tuple[str, ...], majors: tuple[str, ...], jobs: int | None) -> None:
    """Lint CHARTS (default: every chart under charts/, subcharts included).

    For each chart and each scenario (values.yaml alone, then every ci/*-values.yaml): helm lint
    --strict under the newest Helm given (Helm 4; Helm 3 lints each chart's defaults, and renders
    every scenario), the values against values.schema.json (subcharts too), a Helm 3 render at the
    oldest and newest Kubernetes version the chart's kubeVersion admits (one render serves both when no
    template reads .Capabilities), and every rendered object against that version's schemas (strict).
    Custom resources are checked against a CRD the chart renders, or a JSON schema at
    crd-schemas/<group>/<kind>_<version>.json (in the chart or ci/); others are listed as unchecked.
    A scenario whose values equal an earlier one's (an empty file equals the defaults) reuses its
    results. The longest jobs run first.
    """
    selected = select_charts(charts)
    linter = Linter(majors=tuple(int(m) for m in majors) or (3, 4), jobs=jobs)
    with ui.step(f"lint: {len(selected)} chart(s), {linter.jobs} jobs") as detail:
        report = linter.run(selected, progress=lambda done, total: detail(f"{done}/{total} checks"))
    summary.print_report(report, ui.out)
    if not report.ok:
        raise HomeciError(f"{len(report.failures)} check(s) failed (listed above); fix them and run "
                          "`homeci lint` again")
