"""``homeci status``: one table for a running stack; exit code 1 when something needs attention."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from homeci import ui
from homeci.commands import params

STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}



@click.command(name="status")
@params.stack_options
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON instead of a table.")
def command(kubeconfig: Path | None, namespace: str, release: str, as_json: bool) -> None:
    """Readiness and version of each component, certificate expiry, volume usage, the last build of each
    active repository — and what to do about anything that is not ok. Exit code 1 when something needs
    attention."""
    from homeci import kubeaccess, status

    api = kubeaccess.api_client(kubeconfig)
    kubeaccess.probe(api, kubeconfig)
    checks, facts = status.gather(api, namespace, release)
    attention = status.needs_attention(checks)
    if as_json:
        print(json.dumps({**facts, "needsAttention": attention, "checks": [c.to_json() for c in checks]},
                         indent=2))
    else:
        title = (f"{facts['namespace']}/{facts['release']}: {facts['chart']} {facts['version']} "
                 f"(revision {facts['revision']})")
        table = Table("area", "name", "state", "detail", "what to do", title=title)
        for c in checks:
            table.add_row(c.area, c.name, f"[{STYLE[c.state]}]{c.state}[/]", c.detail, c.advice)
        ui.out.print(table)
    if attention:
        bad = sum(c.state != "ok" for c in checks)
        if not as_json:
            ui.console.print(f"{bad} check(s) need attention", markup=False)
        sys.exit(1)
