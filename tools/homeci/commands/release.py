"""``homeci release [--dry-run] [--images-only] [--sign-key KEY --key-url URL] [--date YYYY-MM-DD]``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.table import Table

from homeci import packaging, paths, release, signing, ui
from homeci.errors import HomeciError, UsageError
from homeci.helm import Helm
from homeci.lint import summary
from homeci.lint.runner import Linter


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give the release date as YYYY-MM-DD", ctx, param) from None


def lint_gate(root: Path, charts: list[Path]) -> None:
    """Refuse the release unless `homeci lint` passes for every chart (subcharts included)."""
    linter = Linter()
    everything = [f.parent for f in release.chart_files(root)]
    with ui.step(f"release: lint {len(everything)} chart(s)") as detail:
        report = linter.run(everything, progress=lambda done, total: detail(f"{done}/{total} checks"))
    if not report.ok:
        summary.print_report(report, ui.out)
        raise HomeciError(f"{len(report.failures)} lint check(s) failed (listed above): a release needs "
                          "`homeci lint` to pass; fix them and run `homeci release` again")
    helm = Helm(3)
    for chart in charts:
        packaging.check_renders(chart, helm)


@click.command(name="release")
@click.option("--dry-run", is_flag=True, help="Show the version, the changes and the images; write nothing.")
@click.option("--images-only", is_flag=True,
              help="Only refresh the artifacthub.io/images annotation from the render (between releases).")
@click.option("--sign-key", default=None, metavar="KEY",
              help="The OpenPGP key that will sign the .prov files: its fingerprint goes into "
                   "artifacthub-repo.yml and the artifacthub.io/signKey annotation.")
@click.option("--gnupghome", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="GnuPG home holding --sign-key (default: gpg's own).")
@click.option("--key-url", default=None, metavar="URL",
              help="Where consumers download the public key (required with --sign-key).")
@click.option("--date", "date", default=None, callback=_date, metavar="YYYY-MM-DD",
              help="Release date for the CHANGELOG heading (default: today, UTC).")
def command(dry_run: bool, images_only: bool, sign_key: str | None, gnupghome: Path | None,
            key_url: str | None, date: dt.date) -> None:
    """Prepare a release in the working tree (CONTRIBUTING.md, "Releasing").

    The version comes from CHANGELOG.md's [Unreleased] section by one rule (breaking -> major, a minor
    while 0.x; added/changed/deprecated -> minor; fixed/security -> patch; the first release keeps the
    charts' version). Refused unless `homeci lint` passes and every chart renders. Then every Chart.yaml
    gets the version (the umbrella's subchart pins too), the published charts get appVersion and the
    Artifact Hub annotations (artifacthub.io/changes from the changelog, artifacthub.io/images from the
    render), CHANGELOG.md gets the release heading and artifacthub-repo.yml the signing key. Commit, tag
    v<version>, then publish with `homeci package --sign-key ...` (printed at the end).
    """
    root = paths.repo_root()
    if images_only:
        version = release.suite_version(root)
        with ui.step("release: images from the render"):
            for chart in release.published_charts(root):
                listed = release.chart_images(chart)
                release.set_chart_fields(chart / "Chart.yaml", version=version, pins=False,
                                         annotations={"artifacthub.io/images": release.images_yaml(listed)})
                ui.out.print(f"{chart / 'Chart.yaml'}: {len(listed)} image(s)", markup=False)
        return
    if gnupghome is not None and not sign_key:
        raise UsageError(f"--gnupghome {gnupghome}: it holds the key of --sign-key; name the key with "
                         "--sign-key")
    if bool(sign_key) != bool(key_url):
        raise UsageError("--sign-key and --key-url go together: Artifact Hub shows consumers the key's "
                         "fingerprint and where to download it")
    the_plan = release.plan(root)
    fingerprint = signing.Gpg(gnupghome).fingerprint(sign_key) if sign_key else ""
    _show(the_plan)
    if dry_run:
        for chart in the_plan.charts:
            images = ", ".join(i["image"] for i in release.chart_images(chart))
            ui.out.print(f"{chart.name} images: {images}", markup=False, soft_wrap=True)
        ui.out.print("dry run: nothing written", markup=False)
        return
    lint_gate(root, the_plan.charts)
    with ui.step(f"release: write {the_plan.version}"):
        changed = release.apply(root, the_plan, date=date, images=release.chart_images,
                                fingerprint=fingerprint, key_url=key_url or "")
    for f in changed:
        ui.out.print(f"wrote {f.relative_to(root)}", markup=False)
    v = the_plan.version
    ui.out.print(
        "next:\n"
        f"  git commit -am 'Release {v}' && git tag -s {release.TAG_PREFIX}{v}\n"
        f"  homeci package --sign-key <KEY> --repo-url <URL> --merge-index <published index.yaml> "
        f"--oci oci://<registry>/<path> --cosign-key cosign.key",
        markup=False, soft_wrap=True)


def _show(the_plan: release.Plan) -> None:
    previous = str(the_plan.previous) if the_plan.previous else "(none: first release)"
    ui.out.print(f"release {the_plan.version} ({the_plan.level}) after {previous}", markup=False)
    table = Table("kind", "entry")
    for c in the_plan.section.changes:
        table.add_row(c.kind + (" (breaking)" if c.breaking else ""), c.text)
    for r in the_plan.section.restarts:
        table.add_row("Restarts", f"{r.workload}: {r.reason}")
    ui.out.print(table)
