"""``homeci backup`` and ``homeci restore``: a stack's state in one archive, and back into a fresh install."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from homeci import contract, ui
from homeci.commands import params
from homeci.errors import HomeciError


def _api(kubeconfig: Path | None) -> Any:
    from homeci import kubeaccess

    api = kubeaccess.api_client(kubeconfig)
    kubeaccess.probe(api, kubeconfig)
    return api


def _default_output() -> Path:
    return Path(f"homeci-backup-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.tar.gz")


@click.command(name="backup")
@params.stack_options
@click.option("--pipelines-release", type=params.RELEASE, default=contract.PIPELINES_RELEASE,
              show_default=True,
              help="drone-pipelines release name (in the same namespace); left out when not installed.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Archive file to write (default: homeci-backup-<UTC time>.tar.gz here).")
@click.option("--registry/--no-registry", default=True, show_default=True,
              help="Include the registry's images (they can be rebuilt by pushing again, but slowly).")
@click.option("--apps/--no-apps", default=True, show_default=True,
              help="Include what the pipelines deployed in their target namespaces.")
def backup(kubeconfig: Path | None, namespace: str, release: str, pipelines_release: str,
           output: Path | None, registry: bool, apps: bool) -> None:
    """Write one archive with everything needed to rebuild the stack: Gogs (its own dump and the
    repositories), Drone's database (SQLite online backup), the registry's images, every Secret (CA,
    admin, generated keys), the Helm values of both releases. It holds secrets: keep it like the CA key."""
    from homeci.backup import collect

    dest = output or _default_output()
    if dest.exists():
        raise HomeciError(f"{dest} exists: choose another --output (a backup never overwrites a file)")
    if not dest.parent.is_dir():
        raise HomeciError(f"{dest.parent} is not a directory: create it or choose another --output")
    api = _api(kubeconfig)
    opts = collect.Options(namespace=namespace, release=release, pipelines_release=pipelines_release,
                           registry=registry, apps=apps)
    with ui.step(f"backup of {namespace}/{release}") as detail:
        manifest = collect.backup(api, dest, opts, progress=detail)
    table = Table("what", "value", title=f"{dest} ({dest.stat().st_size / 1e6:.1f} MB)")
    for key, value in collect.summary(manifest).items():
        shown = value if not isinstance(value, list) else f"{len(value)}: " + ", ".join(value[:4]) + (
            ", …" if len(value) > 4 else "")
        table.add_row(key, str(shown))
    ui.out.print(table)


@click.command(name="restore")
@click.argument("archive", type=params.ReadableFile())
@click.option("--kubeconfig", type=params.ReadableFile(), default=None,
              help="Kubeconfig of the cluster to restore into (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--force", is_flag=True,
              help="Overwrite a stack that already holds data (repositories, builds), or install an "
                   "older chart.")
@click.option("--charts", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder holding homeci-umbrella and drone-pipelines (default: this checkout's charts/).")
@click.option("-f", "--values", "values", type=params.ValuesFile(), multiple=True,
              help="Values file applied after the saved values (e.g. a new cluster's storage class).")
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True,
              help="Helm major version to install with.")
@click.option("--timeout", default="10m", show_default=True, help="helm --timeout for each release.")
def restore(archive: Path, kubeconfig: Path | None, force: bool, charts: Path | None,
            values: tuple[Path, ...], major: str, timeout: str) -> None:
    """Put a backup into a fresh install: Secrets first (same CA), the releases with their saved values,
    then the data (Gogs and Drone scaled to zero, restored, scaled up; images pushed back). A truncated
    or foreign archive, or a stack that already holds data (without --force), is refused before
    anything changes."""
    from homeci import kubeaccess
    from homeci.backup import restore as restoring

    opts = restoring.Options(force=force, helm_major=int(major), timeout=timeout,
                             extra_values=list(values))
    if charts is not None:
        opts.charts = charts
    with ui.step(f"restore of {archive}") as detail:
        report = restoring.restore(lambda: _api(kubeconfig), Path(kubeaccess.source(kubeconfig)), archive,
                                   opts, progress=detail)
    table = Table("step", "seconds", "detail", title=f"restored {report.manifest.source.get('namespace')}/"
                  f"{report.manifest.source.get('release')} from {report.manifest.created}")
    for step, secs, detail_text in report.steps:
        table.add_row(step, f"{secs:.1f}", detail_text)
    ui.out.print(table)
