"""``homeci render CHART [-f values]... [--set k=v]...``: print a chart's manifests."""

from __future__ import annotations

from pathlib import Path

import click

from homeci import paths, rendering
from homeci.commands import params
from homeci.errors import HomeciError, UsageError
from homeci.helm import HelmError
from homeci.lint import helmschema, kubeversions


def schema_refusal(chart: Path, values_files: tuple[Path, ...], sets: tuple[str, ...],
                   exc: HelmError) -> HomeciError | None:
    """Helm refused the values against the schema: its lines, each naming the values file and dotted key."""
    errors = helmschema.explain(chart, values_files, sets, exc.stderr, display=Path.cwd())
    if not errors:
        return None
    found = "; ".join(str(e) for e in errors)
    return HomeciError(f"chart {chart.name} refuses these values (values.schema.json): {found}; fix them "
                       f"(every key is documented in {chart.name}'s values.yaml)")


@click.command(name="render")
@click.argument("chart")
@click.option("-f", "--values", "values_files", multiple=True, type=params.ValuesFile(),
              help="Values file (repeatable; later files win).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set a value (repeatable).")
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True,
              help="Helm major version to render with.")
@click.option("--release", type=params.RELEASE, default=rendering.DEFAULT_RELEASE, show_default=True,
              help="Release name.")
@click.option("-n", "--namespace", type=params.NAMESPACE, default=rendering.DEFAULT_NAMESPACE,
              show_default=True, help="Release namespace.")
@click.option("--kube-version", type=params.KubeVersion(), default=None,
              help="Kubernetes version the templates see (default: the newest one the chart's "
                   "kubeVersion admits).")
def command(chart: str, values_files: tuple[Path, ...], sets: tuple[str, ...], major: str, release: str,
            namespace: str, kube_version: str | None) -> None:
    """Render CHART (a name under charts/ or a chart directory) and print the manifests."""
    chart_dir = paths.resolve_chart(chart)
    for pair in sets:
        if not pair.partition("=")[0] or "=" not in pair:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
    if kube_version is None:
        # Helm's built-in default depends on how helm was built (a plain `go install` says 1.20)
        kube_version = kubeversions.validation_range(chart_dir)[1]
    try:
        text = rendering.render_text(chart_dir, list(values_files), tuple(sets), major=int(major),
                                     release=release, namespace=namespace, kube_version=kube_version)
    except HelmError as exc:
        raise schema_refusal(chart_dir, values_files, sets, exc) or exc from None
    click.echo(text, nl=not text.endswith("\n"))
