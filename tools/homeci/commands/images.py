"""``images list|build``: the images the charts reference, built from source (mounted by the cluster
command as ``homeci cluster images``)."""

from __future__ import annotations

import click
from rich.table import Table

from homeci import images, ui


@click.group(name="images")
def group() -> None:
    """Images built from source for the real node and offline kind (no registry, no Docker)."""


@group.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Also list where each image is referenced.")
def list_(show_all: bool) -> None:
    """Every image the rendered charts and the cluster reference, its recipe, and whether it is cached."""
    table = Table("image", "recipe", "state", "referenced by" if show_all else "references")
    missing = []
    for ref in images.referenced_images():
        recipe = images.recipe_for(ref.ref)
        if recipe is None:
            missing.append(ref)
            refs = "\n".join(ref.where) if show_all else ref.where[0]
            table.add_row(ref.ref, "[red]no recipe[/red]", "-", refs)
            continue
        state = "cached" if images.is_cached(ref.ref) else "not built"
        via = recipe.title + (f" [dim](as {recipe.ref})[/dim]" if recipe.ref != ref.ref else "")
        if recipe.stand_in:
            via += " [yellow]stand-in[/yellow]"
        table.add_row(ref.ref, via, state, "\n".join(ref.where) if show_all else f"{len(ref.where)} place(s)")
    ui.out.print(table)
    images.check(missing)


@group.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even if the cache has the image.")
def build(names: tuple[str, ...], force: bool) -> None:
    """Build NAMES (image references), or every image a default render or the cluster references."""
    if names:
        refs = list(names)
        for ref in refs:
            images.require(ref)  # a missing recipe fails before anything is built
    else:
        found = images.referenced_images()
        images.check(found)
        refs = [r.ref for r in found if r.default]
    for ref in refs:
        with ui.step(f"image: {ref}") as detail:
            path = images.build([ref], detail, force=force)[images.normalize(ref)]
        ui.out.print(f"{images.normalize(ref)}  {path}  ({path.stat().st_size / 1e6:.1f} MB)")
