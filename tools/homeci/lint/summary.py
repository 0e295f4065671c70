"""The ``homeci lint`` summary: a chart x scenario x check table, then every failure's messages."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from homeci import ui
from homeci.lint.runner import COLUMNS, CheckResult, LintReport

_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim"}
_MARK = {"pass": "ok", "fail": "FAIL", "skip": "-"}


def _cell(result: CheckResult | None) -> Text:
    if result is None:
        return Text("")
    label = _MARK[result.status]
    if result.check.startswith("k8s-") and result.check[4:5].isdigit():
        label += f" {result.check[4:]}"
    if result.status == "fail" and result.messages:
        label += f" ({len(result.messages)})"
    if result.unchecked:
        label += f" +{len(result.unchecked)} unchecked"
    return Text(label, style=_STYLE[result.status])


def table(report: LintReport) -> Table:
    t = Table(title="homeci lint", show_lines=False)
    t.add_column("chart", no_wrap=True)
    t.add_column("scenario", no_wrap=True)
    for col in COLUMNS:
        t.add_column(col, no_wrap=True)
    rows: dict[tuple[str, str], dict[str, CheckResult]] = {}
    for r in report.results:
        rows.setdefault((r.chart, r.scenario), {})[r.column] = r
    for (chart, scenario), cells in rows.items():
        t.add_row(chart, scenario, *(_cell(cells.get(col)) for col in COLUMNS))
    return t


def print_report(report: LintReport, console: Console) -> None:
    ui.wide(console).print(table(report))
    unchecked = sorted({(r.chart, u) for r in report.results for u in r.unchecked})
    if unchecked:
        console.print(f"[yellow]{len(unchecked)} custom resource(s) not validated (no schema):[/yellow]")
        for chart, what in unchecked:
            console.print(f"  {chart}: {what}", markup=False, soft_wrap=True)
    for r in report.failures:
        console.print(f"[bold red]✗ {r.chart} › {r.scenario} › {r.check}[/bold red]")
        for msg in r.messages:
            console.print(f"    {msg}", markup=False, soft_wrap=True)
    counts = {s: sum(1 for r in report.results if r.status == s) for s in ("pass", "fail", "skip")}
    verdict = "[bold red]FAILED[/bold red]" if report.failures else "[bold green]passed[/bold green]"
    console.print(f"homeci lint {verdict}: {counts['pass']} passed, {counts['fail']} failed, "
                  f"{counts['skip']} skipped in {report.seconds:.1f}s")
