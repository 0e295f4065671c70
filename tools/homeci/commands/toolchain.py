"""``homeci toolchain install|list``."""

from __future__ import annotations

import click
from rich.table import Table

from homeci import paths, toolchain, ui


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
def install(tools: tuple[str, ...], force: bool) -> None:
    """Build TOOLS from the Go module proxy into the cache and check their versions.

    Without TOOLS: every tool except the optional ones (kind)."""
    names = list(tools) or toolchain.default_tools()
    for name in names:
        toolchain.tool(name)  # unknown names fail before anything is built

    for name in names:
        t = toolchain.tool(name)
        label = f"{name} {t.version}"
        with ui.step(f"toolchain: {label}") as detail:
            toolchain.install_many([name], force=force, progress=detail)
    ui.out.print(f"toolchain ready in {paths.toolchain_dir()}")
