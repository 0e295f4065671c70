"""``homeci toolchain install|list|outdated``."""

from __future__ import annotations

import click
from rich.table import Table

from homeci import outdated as outdated_
from homeci import paths, toolchain, ui
from homeci.errors import HomeciError


@click.group(name="toolchain")
def group() -> None:
    """Install and list the pinned external binaries (toolchain/toolchain.toml)."""


@group.command(name="list")
def list_() -> None:
    """Show every pinned tool, its version and where its binary is."""
    table = Table("tool", "version", "state", "path", "override")
    for name, t in toolchain.load_pins().items():
        state, path = toolchain.status(name)
        table.add_row(name, t.version, state, str(path or t.cached_path), t.env)
    ui.out.print(table)


@group.command()
@click.argument("tools", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even if the cache has the binary.")
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=None,
              help="Go commands at a time (default: 2, or half the cores on a bigger machine).")
def install(tools: tuple[str, ...], force: bool, jobs: int | None) -> None:
    """Build TOOLS from the Go module proxy into the cache and check their versions.

    Without TOOLS: every tool except the optional ones (kind, kubeadm, cosign). Tools of one module
    and flags build with one go command; a few commands run at a time, longest first. A line per
    item says what is building, how long it took and about how long is left (from the build times
    recorded in the cache)."""
    names = list(tools) or toolchain.default_tools()
    for name in names:
        toolchain.tool(name)  # unknown names fail before anything is built
    with ui.step(f"toolchain: {len(names)} tool(s)") as detail:
        toolchain.install_many(names, force=force, jobs=jobs, say=ui.say, progress=detail)
    ui.out.print(f"toolchain ready in {paths.toolchain_dir()}")


_STYLE = {"current": "green", "behind": "bold red", "held": "yellow", "unknown": "dim", "unchecked": "dim"}


@group.command()
@click.argument("tools", nargs=-1)
def outdated(tools: tuple[str, ...]) -> None:
    """Each pin against the newest release the Go module proxy or PyPI reports (TOOLS, default all).

    One row per module version: the pin, the newest patch of its minor, the newest release of its
    major. Exits non-zero when a pin is behind and not held (a `hold` reason in toolchain.toml).
    Asks the network: the module proxy the go command is set up for, and PyPI's JSON API."""
    for name in tools:
        toolchain.tool(name)
    with ui.step("asking the module proxy and PyPI"):
        rows = outdated_.check(list(tools) or None)
    table = Table("tools", "module / package", "pinned", "newest patch", "newest", "state")
    for r in sorted(rows, key=lambda r: (r.state != "behind", r.state != "held", r.tools)):
        state = f"[{_STYLE[r.state]}]{r.state}[/]" + (f" ({r.note})" if r.note else "")
        table.add_row(", ".join(r.tools), r.source, r.pinned, r.newest_patch or "-", r.newest or "-", state)
    ui.wide(ui.out).print(table)
    ui.out.print(outdated_.image_note())
    late = outdated_.behind(rows)
    if late:
        names = ", ".join(r.tools[0] for r in late)
        raise HomeciError(f"{len(late)} pin(s) behind ({names}): bump them in {outdated_.files_note().name} "
                          "(CONTRIBUTING.md, \"Bump a pinned version\") or give each a hold")
    tally = {state: sum(r.state == state for r in rows) for state in _STYLE}
    counts = ", ".join(f"{n} {state}" for state, n in tally.items() if n)
    ui.out.print(f"no pin is behind ({len(rows)} rows: {counts})")
