"""Package the publishable charts into ``dist/``, keep a classic ``index.yaml``, optionally push to OCI.

``helm package`` stamps every tar entry with the current time, so two packagings of the same chart differ
byte for byte. homeci rewrites each archive deterministically (sorted entries, fixed mtime/owner/mode,
gzip without timestamp): the same chart content gives the same archive and the same index ``digest``.
A chart version that is already published (in ``dist/`` or in the index being merged) with different
content is refused: a published version must never change. A chart whose templates do not render with its
default values is refused before anything is written, and rerunning with identical content leaves every
file byte for byte as it was (``index.yaml``'s ``generated`` time included).

Signing (:mod:`homeci.signing`): with a :class:`~homeci.signing.ProvenanceSigner` every new archive gets a
``.prov`` that ``helm verify`` has accepted; with a cosign key every chart pushed to OCI is signed by digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci import paths, signing
from homeci.errors import HomeciError, UsageError
from homeci.helm import Helm, HelmError

# 1980-01-01T00:00:00Z unless SOURCE_DATE_EPOCH says otherwise (reproducible-builds convention)
DEFAULT_EPOCH = 315532800


@dataclass
class Packaged:
    name: str
    version: str
    archive: Path
    state: str          # new | unchanged
    digest: str         # sha256 of the archive (what index.yaml records)
    pushed: str = ""    # oci://.../<name>:<version> when pushed
    provenance: Path | None = None   # <archive>.prov when signed
    oci_digest: str = ""             # the pushed manifest's digest (what cosign signs)
    cosigned: bool = False


@dataclass(frozen=True)
class OciTarget:
    """Where ``--oci`` pushes: ``url`` (oci://host/path), an optional CA for the registry's TLS, and an
    optional cosign signer (then every pushed chart is signed by digest)."""

    url: str
    ca_file: Path | None = None
    cosign: signing.Cosign | None = None
    cosign_key: signing.CosignKey | None = None

    @property
    def host_path(self) -> str:
        return self.url.removeprefix("oci://").rstrip("/")


def publishable_charts() -> list[Path]:
    """Top-level charts under ``charts/`` (subcharts ship inside their umbrella; the library chart ships
    inside every chart that uses it and installs nothing alone)."""
    base = paths.charts_dir()
    return [c for c in paths.find_charts(base) if c.parent == base and not _library(c)]


def _library(chart: Path) -> bool:
    try:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):  # chart_meta reports a broken Chart.yaml
        return False
    return isinstance(meta, dict) and meta.get("type") == "library"


def chart_meta(chart: Path) -> tuple[str, str]:
    file = chart / "Chart.yaml"
    try:
        meta = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{file}: cannot read it ({exc}); fix the file") from None
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise HomeciError(f"{file}: needs name and version; add them")
    return str(meta["name"]), str(meta["version"])


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def normalise(archive: Path) -> None:
    """Rewrite a chart archive deterministically, in place."""
    with tarfile.open(archive, "r:gz") as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                   for m in src.getmembers() if m.isfile() or m.isdir()]
    raw = io.BytesIO()
    mtime = _epoch()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for member, data in sorted(members, key=lambda md: md[0].name):
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if member.isdir() else 0o644
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if member.isfile() else None)
    with open(archive, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_digest(archive: Path) -> str:
    """sha256 over the archive's file names and bytes — independent of timestamps and compression."""
    h = hashlib.sha256()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name):
                data = tar.extractfile(m).read()  # type: ignore[union-attr]
                h.update(f"{m.name}\0{len(data)}\0".encode())
                h.update(data)
    except (OSError, tarfile.TarError) as exc:
        raise HomeciError(f"{archive}: not a readable chart archive ({exc}); delete it and package again") \
            from None
    return h.hexdigest()


def load_index(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError as exc:
        raise HomeciError(f"{path}: not an index.yaml (byte {exc.start} is not UTF-8 text); give the "
                          "repository's index.yaml") from None
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{path}: not a readable index.yaml ({' '.join(str(exc).split())}); fix or remove "
                          "it") from None
    if not isinstance(data, dict):
        raise HomeciError(f"{path}: not a chart repository index; fix or remove it")
    return data


def _index_entry(index: dict[str, Any], name: str, version: str) -> dict[str, Any] | None:
    for entry in (index.get("entries") or {}).get(name) or []:
        if isinstance(entry, dict) and str(entry.get("version")) == version:
            return entry
    return None


def _bump_hint(chart: Path, name: str, version: str, where: str) -> HomeciError:
    return HomeciError(
        f"{name} {version} is already published in {where} with different content: bump `version` in "
        f"{chart / 'Chart.yaml'} (a published chart version must never change)"
    )


def check_repo_url(url: str) -> str:
    """``--repo-url`` must be the absolute http(s) address index.yaml is served from."""
    parts = urllib.parse.urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url)
            or parts.query or parts.fragment):
        raise UsageError(f"--repo-url {url!r}: not an http(s) URL; give the address the repository's "
                         "index.yaml is served from, e.g. https://charts.example.org/homeci")
    return url


def check_oci_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "oci" or not parts.hostname or any(c.isspace() for c in url):
        raise UsageError(f"--oci {url}: must start with oci:// (e.g. oci://registry.example/charts)")
    return url


def check_renders(chart: Path, helm: Helm) -> None:
    """Refuse a chart whose templates do not render with its default values (helm package never renders).
    A library chart renders nothing on its own: its users' renders check it."""
    try:
        kind = (yaml.safe_load((chart / "Chart.yaml").read_text()) or {}).get("type")
    except (OSError, yaml.YAMLError, AttributeError):
        kind = None
    if kind == "library":
        return
    try:
        helm.template(chart)
    except HelmError as exc:
        raise HomeciError(f"{chart}: its templates do not render with the default values ({exc.reason}); "
                          "fix the chart before packaging it") from None


def _make_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--dest {dest}: is a file, not a directory; give a directory for the archives "
                         "and index.yaml")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--dest {dest}: cannot create the directory ({exc.strerror}); give a directory "
                         "path") from None


def package(charts: list[Path], dest: Path, *, repo_url: str | None = None, merge_index: Path | None = None,
            oci: str | OciTarget | None = None, helm: Helm | None = None,
            signer: signing.ProvenanceSigner | None = None) -> list[Packaged]:
    """Package ``charts`` into ``dest``, refresh ``dest/index.yaml``, push to ``oci`` if given.

    With ``signer`` every archive in ``dest`` that lacks a ``.prov`` is signed."""
    target = OciTarget(oci) if isinstance(oci, str) else oci
    if target is not None:
        check_oci_url(target.url)
    if repo_url is not None:
        check_repo_url(repo_url)
    if merge_index is not None and not merge_index.is_file():
        raise UsageError(f"--merge-index {merge_index}: no such file; give an existing index.yaml")
    helm = helm or Helm(3)
    _make_dest(dest)
    own_index = dest / "index.yaml"
    indexes = [(p, load_index(p)) for p in (own_index, merge_index) if p is not None and p.is_file()]
    previous_bytes = own_index.read_bytes() if own_index.is_file() else None
    previous = load_index(own_index) if own_index.is_file() else {}

    results: list[Packaged] = []
    with tempfile.TemporaryDirectory(prefix="homeci-package-") as tmp:
        staged: list[tuple[Path, Path]] = []
        # check everything before writing anything: a refused chart publishes nothing
        for chart in charts:
            name, version = chart_meta(chart)
            check_renders(chart, helm)
            built = helm.package(chart, tmp)
            if not built.is_file():
                raise HomeciError(f"helm package {chart} reported {built}, which does not exist")
            normalise(built)
            digest = sha256(built)
            archive = dest / built.name
            state = "new"
            if archive.exists():
                if content_digest(archive) != content_digest(built):
                    raise _bump_hint(chart, name, version, str(archive))
                state = "unchanged"
                digest = sha256(archive)
            for index_path, index in indexes:
                entry = _index_entry(index, name, version)
                if entry is not None and entry.get("digest") and entry["digest"] != digest:
                    raise _bump_hint(chart, name, version, str(index_path))
            results.append(Packaged(name, version, archive, state, digest))
            if state == "new":
                staged.append((built, archive))
        if signer is not None:
            for built, _archive in staged:
                signer.sign(built)
        for built, archive in staged:
            shutil.move(str(built), archive)
            if signer is not None:
                shutil.move(str(built) + ".prov", str(archive) + ".prov")
    for r in results:
        prov = r.archive.with_name(r.archive.name + ".prov")
        if signer is not None and not prov.is_file():
            signer.sign(r.archive)   # an unchanged archive published before without a signature
        r.provenance = prov if prov.is_file() else None
    helm.repo_index(dest, url=repo_url, merge=merge_index)
    _keep_created(own_index, previous)
    _keep_generated(own_index, previous_bytes)
    if target is not None:
        for r in results:
            _push(r, target, helm)
    return results


def publish_file(source: Path, dest: Path) -> bool:
    """Copy a repository-level file (``artifacthub-repo.yml``) beside index.yaml; unchanged content is left
    alone (a rerun stays a no-op). Returns whether it was written."""
    target = dest / source.name
    data = source.read_bytes()
    if target.is_file() and target.read_bytes() == data:
        return False
    target.write_bytes(data)
    return True


def _push(r: Packaged, target: OciTarget, helm: Helm) -> None:
    out = helm.push(r.archive, target.url, ca_file=target.ca_file)
    r.pushed = f"{target.url.rstrip('/')}/{r.name}:{r.version}"
    r.oci_digest = signing.pushed_digest(out, f"helm push {r.archive} {target.url}")
    if target.cosign is not None and target.cosign_key is not None:
        target.cosign.sign(f"{target.host_path}/{r.name}@{r.oci_digest}", target.cosign_key)
        r.cosigned = True


def _keep_generated(index_file: Path, previous: bytes | None) -> None:
    """An index whose entries did not change keeps its bytes (``generated`` included): a true no-op."""
    if previous is None or not index_file.is_file():
        return
    try:
        old = yaml.safe_load(previous) or {}
    except yaml.YAMLError:
        return
    new = load_index(index_file)
    if isinstance(old, dict):
        old.pop("generated", None)
        new.pop("generated", None)
        if old == new:
            index_file.write_bytes(previous)


def _keep_created(index_file: Path, previous: dict[str, Any]) -> None:
    """Entries whose archive did not change keep their original ``created`` time (a stable index)."""
    if not previous or not index_file.is_file():
        return
    index = load_index(index_file)
    changed = False
    for name, entries in (index.get("entries") or {}).items():
        for entry in entries or []:
            old = _index_entry(previous, name, str(entry.get("version")))
            same = old is not None and old.get("digest") == entry.get("digest")
            if old is not None and same and old.get("created") != entry.get("created"):
                entry["created"] = old.get("created")
                changed = True
    if changed:
        index_file.write_text(yaml.safe_dump(index, sort_keys=False))
