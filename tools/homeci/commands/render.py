"""``homeci render CHART [-f values]... [--set k=v]...``: print a chart's manifests."""

from __future__ import annotations

import re
from pathlib import Path

import click

from homeci import paths, rendering
from homeci.errors import UsageError
from homeci.lint import kubeversions
from homeci.manifests import DNS_LABEL


def check_name(value: str, flag: str, limit: int) -> None:
    """Namespaces and release names are DNS-1123 labels (Helm allows release names up to 53 characters)."""
    if len(value) > limit or not re.fullmatch(DNS_LABEL, value):
        raise UsageError(f"{flag} {value!r}: not a valid name (lower-case letters, digits and '-', starting "
                         f"and ending with a letter or digit, at most {limit} characters), e.g. homeci")


@click.command(name="render")
@click.argument("chart")
@click.option("-f", "--values", "values_files", multiple=True, type=click.Path(path_type=Path),
              help="Values file (repeatable; later files win).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set a value (repeatable).")
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True,
              help="Helm major version to render with.")
@click.option("--release", default=rendering.DEFAULT_RELEASE, show_default=True, help="Release name.")
@click.option("-n", "--namespace", default=rendering.DEFAULT_NAMESPACE, show_default=True,
              help="Release namespace.")
@click.option("--kube-version", default=None,
              help="Kubernetes version the templates see (default: the newest one the chart's "
                   "kubeVersion admits).")
def command(chart: str, values_files: tuple[Path, ...], sets: tuple[str, ...], major: str, release: str,
            namespace: str, kube_version: str | None) -> None:
    """Render CHART (a name under charts/ or a chart directory) and print the manifests."""
    chart_dir = paths.resolve_chart(chart)
    check_name(namespace, "--namespace", 63)
    check_name(release, "--release", 53)
    for f in values_files:
        if not f.exists():
            raise UsageError(f"-f {f}: values file not found; check the path")
        if f.is_dir():
            raise UsageError(f"-f {f}: is a directory; give a values YAML file")
    for pair in sets:
        if "=" not in pair:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
    if kube_version is None:
        # Helm's built-in default depends on how helm was built (a plain `go install` says 1.20)
        kube_version = kubeversions.validation_range(chart_dir)[1]
    text = rendering.render_text(chart_dir, list(values_files), tuple(sets), major=int(major),
                                 release=release, namespace=namespace, kube_version=kube_version)
    click.echo(text, nl=not text.endswith("\n"))
