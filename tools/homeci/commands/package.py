"""``homeci package [CHART...] [--repo-url URL] [--oci oci://...] [--dest dist] [--sign-key KEY] ...``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from homeci import ca, packaging, paths, signing, ui
from homeci.commands.params import ReadableFile
from homeci.errors import UsageError
from homeci.helm import Helm


@click.command(name="package")
@click.argument("charts", nargs=-1)
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: dist/ in the checkout).")
@click.option("--repo-url", default=None, help="URL the classic repository is served from (index.yaml urls).")
@click.option("--merge-index", type=ReadableFile(), default=None,
              help="An existing index.yaml (e.g. the published one) to merge and check against.")
@click.option("--oci", default=None, metavar="oci://HOST/PATH", help="Also helm push every package there.")
@click.option("--oci-ca-file", type=ReadableFile(), default=None,
              help="CA certificate of the OCI registry's TLS (e.g. the homeci CA for homeci's own registry).")
@click.option("--sign-key", default=None, metavar="KEY",
              help="OpenPGP key (id, fingerprint or e-mail in your GnuPG keyring): signs a .prov each.")
@click.option("--gnupghome", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="GnuPG home holding --sign-key (default: gpg's own, $GNUPGHOME or ~/.gnupg).")
@click.option("--passphrase-file", type=ReadableFile(), default=None,
              help="File with the passphrase of --sign-key (unattended signing; else gpg-agent asks).")
@click.option("--cosign-key", type=ReadableFile(), default=None,
              help="cosign private key (cosign.key, cosign.pub beside it; password in COSIGN_PASSWORD) that "
                   "signs every chart pushed with --oci.")
def command(charts: tuple[str, ...], dest: Path | None, repo_url: str | None, merge_index: Path | None,
            oci: str | None, oci_ca_file: Path | None, sign_key: str | None, gnupghome: Path | None,
            passphrase_file: Path | None, cosign_key: Path | None) -> None:
    """Package CHARTS (default: every top-level chart under charts/) into dist/ with an index.yaml.

    A chart version already in dist/ or the merged index with different content is refused: bump
    `version` in its Chart.yaml. Identical content is a no-op. A chart whose templates do not render is
    refused. With --sign-key each archive gets a Helm provenance file (.prov, checked with `helm verify`
    before it is kept); with --oci and --cosign-key each pushed chart is signed with cosign.
    """
    selected = [paths.resolve_chart(c) for c in charts] if charts else packaging.publishable_charts()
    if not selected:
        raise UsageError(f"no charts under {paths.charts_dir()} to package")
    if cosign_key is not None and oci is None:
        raise UsageError("--cosign-key signs what --oci pushes: add --oci oci://HOST/PATH")
    if oci_ca_file is not None:
        if oci is None:
            raise UsageError(f"--oci-ca-file {oci_ca_file}: it trusts the registry of --oci; add "
                             "--oci oci://HOST/PATH or drop it")
        ca.load_certs(oci_ca_file)   # one line naming the file unless it holds certificates
    if (gnupghome or passphrase_file) and not sign_key:
        raise UsageError("--gnupghome/--passphrase-file belong to --sign-key: name the key with --sign-key")
    out = dest or paths.repo_root() / "dist"
    helm = Helm(3)
    signer = None
    if sign_key:
        signer = signing.ProvenanceSigner(signing.GpgKey(sign_key, gnupghome, passphrase_file), helm)
    target = None
    if oci is not None:
        cosign = key = None
        if cosign_key is not None:
            key = signing.cosign_key_from_env(cosign_key)
            registry_config = Path(helm.env().get("HELM_REGISTRY_CONFIG", ""))
            cosign = signing.Cosign(docker_config=registry_config.parent, ca_file=oci_ca_file)
        target = packaging.OciTarget(oci, oci_ca_file, cosign, key)
    try:
        with ui.step(f"package: {len(selected)} chart(s) into {out}"):
            results = packaging.package(selected, out, repo_url=repo_url, merge_index=merge_index, oci=target,
                                        helm=helm, signer=signer)
        fingerprint = signer.fingerprint if signer else ""
    finally:
        if signer is not None:
            signer.close()
    table = Table("chart", "version", "state", "archive", "sha256", "signed", *(["pushed"] if oci else []))
    for r in results:
        signed = ".prov" if r.provenance else "-"
        pushed = [f"{r.pushed}@{r.oci_digest}" + (" (cosign)" if r.cosigned else "")] if oci else []
        table.add_row(r.name, r.version, r.state, str(r.archive), r.digest[:16], signed, *pushed)
    metadata = paths.repo_root() / "artifacthub-repo.yml"
    if metadata.is_file() and packaging.publish_file(metadata, out):
        ui.out.print(f"wrote {out / metadata.name}", markup=False, soft_wrap=True)
    ui.out.print(table)
    ui.out.print(f"index: {out / 'index.yaml'}", markup=False, soft_wrap=True)
    if fingerprint:
        ui.out.print(f"provenance signed by OpenPGP key {fingerprint}", markup=False, soft_wrap=True)
