"""Package the publishable charts into ``dist/``, keep a classic ``index.yaml``, optionally push to OCI.

``helm package`` stamps every tar entry with the current time, so two packagings of the same chart differ
byte for byte. homeci rewrites each archive deterministically (sorted entries, fixed mtime/owner/mode,
gzip without timestamp): the same chart content gives the same archive and the same index ``digest``.
A chart version that is already published (in ``dist/`` or in the index being merged) with different
content is refused: a published version must never change.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci import paths
from homeci.errors import HomeciError, UsageError
from homeci.helm import Helm

# 1980-01-01T00:00:00Z unless SOURCE_DATE_EPOCH says otherwise (reproducible-builds convention)
DEFAULT_EPOCH = 315532800


@dataclass
class Packaged:
    name: str
    version: str
    archive: Path
    state: str          # new | unchanged
    digest: str         # sha256 of the archive (what index.yaml records)
    pushed: str = ""


def publishable_charts() -> list[Path]:
    """Top-level charts under ``charts/`` (subcharts ship inside their umbrella)."""
    base = paths.charts_dir()
    return [c for c in paths.find_charts(base) if c.parent == base]


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
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{path}: not a readable index.yaml ({exc}); fix or remove it") from None
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


def package(charts: list[Path], dest: Path, *, repo_url: str | None = None, merge_index: Path | None = None,
            oci: str | None = None, helm: Helm | None = None) -> list[Packaged]:
    """Package ``charts`` into ``dest``, refresh ``dest/index.yaml``, push to ``oci`` if given."""
    if oci is not None and not oci.startswith("oci://"):
        raise UsageError(f"--oci {oci}: must start with oci:// (e.g. oci://registry.example/charts)")
    if merge_index is not None and not merge_index.is_file():
        raise UsageError(f"--merge-index {merge_index}: no such file; give an existing index.yaml")
    helm = helm or Helm(3)
    dest.mkdir(parents=True, exist_ok=True)
    own_index = dest / "index.yaml"
    indexes = [(p, load_index(p)) for p in (own_index, merge_index) if p is not None and p.is_file()]
    previous = load_index(own_index) if own_index.is_file() else {}

    results: list[Packaged] = []
    with tempfile.TemporaryDirectory(prefix="homeci-package-") as tmp:
        staged: list[tuple[Path, Path]] = []
        # check everything before writing anything: a refused chart publishes nothing
        for chart in charts:
            name, version = chart_meta(chart)
            built = helm.package(chart, tmp)
            if not built.is_file():
                raise HomeciError(f"helm package {chart} reported {built}, which does not exist")
            normalise(built)
            digest = sha256(built)
            target = dest / built.name
            state = "new"
            if target.exists():
                if content_digest(target) != content_digest(built):
                    raise _bump_hint(chart, name, version, str(target))
                state = "unchanged"
                digest = sha256(target)
            for index_path, index in indexes:
                entry = _index_entry(index, name, version)
                if entry is not None and entry.get("digest") and entry["digest"] != digest:
                    raise _bump_hint(chart, name, version, str(index_path))
            results.append(Packaged(name, version, target, state, digest))
            if state == "new":
                staged.append((built, target))
        for built, target in staged:
            shutil.move(str(built), target)
    helm.repo_index(dest, url=repo_url, merge=merge_index)
    _keep_created(own_index, previous)
    if oci:
        for r in results:
            helm.push(r.archive, oci)
            r.pushed = f"{oci.rstrip('/')}/{r.name}:{r.version}"
    return results


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
