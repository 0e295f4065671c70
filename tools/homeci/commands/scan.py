"""``homeci scan``: the security scan (checkov) of every chart scenario against the allow-list
toolchain/checkov-allowed.yaml."""

from __future__ import annotations

import click
from rich.table import Table

from homeci import scan, ui
from homeci.errors import HomeciError


@click.command(name="scan")
@click.option("--install", is_flag=True, help="Install the pinned checkov first if it is missing.")
@click.option("--explain", is_flag=True, help="List every finding with the reason it is allowed.")
def command(install: bool, explain: bool) -> None:
    """Scan the rendered manifests of every scenario of both charts with the pinned checkov.

    Fails when a finding is not on the allow-list (toolchain/checkov-allowed.yaml) or an allow-list entry
    matches nothing any more."""
    if install:
        from homeci import toolchain

        with ui.step("toolchain: checkov") as detail:
            toolchain.install_many(["checkov"], progress=detail)
    targets = scan.targets()
    with ui.step(f"checkov over {len(targets)} renders"):
        report = scan.run(targets)
    table = Table("target", "checks", "failed", "explained", "unexplained")
    for name, r in report.results.items():
        bad = [f for f in r.failed if report.explained(f) is None]
        table.add_row(name, str(r.passed + len(r.failed)), str(len(r.failed)),
                      str(len(r.failed) - len(bad)), str(len(bad)))
    ui.out.print(table)
    if explain:
        for name, r in report.results.items():
            for f in r.failed:
                entry = report.explained(f)
                ui.out.print(f"{name}: {f.check} {f.obj}: {entry.reason if entry else 'UNEXPLAINED'}")
    unexplained, stale = report.unexplained(), report.stale()
    for f in unexplained:
        ui.out.print(f"unexplained: {f}")
    for entry, pattern in stale:
        ui.out.print(f"stale allow-list entry: {entry.check} {pattern} matches no finding in any scenario")
    if unexplained or stale:
        raise HomeciError(f"{len(unexplained)} unexplained finding(s), {len(stale)} stale allow-list "
                          f"entr{'y' if len(stale) == 1 else 'ies'}: fix the chart or explain it in "
                          f"{scan.ALLOW_LIST} (and the README table)")
