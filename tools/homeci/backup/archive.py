"""The backup archive: one ``.tar.gz`` whose members live under ``homeci-backup/`` and whose **last**
member is ``homeci-backup/manifest.json``: format and version, where it came from, what it holds,
and the size and SHA-256 of every other member. Last, so a truncated archive has no manifest and is
refused; checksums, so a damaged one is refused too — both before anything changes.

Members (paths below ``homeci-backup/``):

==============================  ====================================================================
``kubernetes/secrets.json``     every Secret of the release namespace (Helm's release records and
                                ServiceAccount tokens excepted), with labels and annotations
``kubernetes/namespaces.json``  the release namespace and the pipelines' target namespaces (labels)
``kubernetes/apps.json``        what the pipelines deployed in the target namespaces (Deployments,
                                Services, Ingresses, ConfigMaps), cluster-specific fields removed
``helm/<release>.json``         chart name, version and the user-supplied values of each release
``gogs/database.zip``           ``gogs backup --database-only`` (Gogs' own portable dump)
``gogs/files.tar``              repositories, attachments, avatars, LFS objects, homeci's state
``drone/database.sqlite``       SQLite online backup of Drone's database (in the bridge container)
``drone/files.tar``             the Gogs bridge's token store
``registry/index.json``         repository → tag → manifest digest and media type
``registry/blobs/sha256/<hex>`` manifests, configs and layers (``--no-registry`` leaves them out)
==============================  ====================================================================
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from homeci.backup.script import SCRIPT
from homeci.errors import HomeciError

# Defined once, in the chart's backup script (the scheduled backup writes the same archive).
FORMAT: str = SCRIPT.FORMAT
FORMAT_VERSION: int = SCRIPT.FORMAT_VERSION
ROOT: str = SCRIPT.ROOT
MANIFEST: str = SCRIPT.MANIFEST
BUFFER = 1 << 20


@dataclass
class Manifest:
    created: str
    homeci_version: str
    source: dict[str, Any]  # release, namespace, server, kubernetes version
    components: dict[str, str]  # component -> image tag
    charts: dict[str, dict[str, str]]  # release -> {chart, version}
    contents: dict[str, Any]  # summary: secrets, repositories, builds, images, ...
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {size, sha256}

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "formatVersion": FORMAT_VERSION, "created": self.created,
                "homeciVersion": self.homeci_version, "source": self.source,
                "components": self.components, "charts": self.charts, "contents": self.contents,
                "files": self.files}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise HomeciError(f"{where} is not a homeci backup (its manifest has no format {FORMAT!r})")
        if data.get("formatVersion") != FORMAT_VERSION:
            raise HomeciError(f"{where} is a homeci backup of format version {data.get('formatVersion')}, "
                              f"this homeci reads version {FORMAT_VERSION}: use a matching homeci")
        try:
            return cls(str(data["created"]), str(data["homeciVersion"]), dict(data["source"]),
                       dict(data["components"]), dict(data["charts"]), dict(data["contents"]),
                       dict(data["files"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise HomeciError(f"{where}: its manifest lacks {exc}: not an archive homeci wrote") from None


class Writer:
    """Collects members in a staging folder, then packs them with the manifest last."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        staging.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """Where member ``name`` (relative to ``homeci-backup/``) is staged; parents created."""
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise HomeciError(f"bad archive member name {name!r}")
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def put_json(self, name: str, data: Any) -> None:
        self.path(name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    def pack(self, manifest: Manifest, dest: Path) -> Path:
        """The archive (the chart script's ``pack``: members sorted, the manifest last, owner-only)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        doc = SCRIPT.pack(self.staging, manifest.to_json(), dest)
        manifest.files = dict(doc["files"])
        return dest


def read(archive: Path, into: Path) -> Manifest:
    """Unpack ``archive`` into ``into`` and check it whole: a homeci manifest last, every member it
    lists present with its size and SHA-256, nothing else. Any failure is one sentence; nothing
    outside ``into`` is touched."""
    where = str(archive)
    if not archive.is_file():
        raise HomeciError(f"{where} does not exist or is not a file: give the archive `homeci backup` wrote")
    into.mkdir(parents=True, exist_ok=True)
    seen: dict[str, tuple[int, str]] = {}
    manifest_data: bytes | None = None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name
                if manifest_data is not None:
                    raise HomeciError(f"{where} has member {name} after its manifest: not an archive homeci "
                                      "wrote")
                inside = name.startswith(ROOT + "/") and ".." not in PurePosixPath(name).parts
                if not inside or not member.isfile():
                    raise HomeciError(f"{where} is not a homeci backup (unexpected member {name!r})")
                src = tar.extractfile(member)
                assert src is not None
                if name == MANIFEST:
                    manifest_data = src.read()
                    continue
                rel = name[len(ROOT) + 1:]
                dest = into / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with dest.open("wb") as out:
                    while chunk := src.read(BUFFER):
                        h.update(chunk)
                        out.write(chunk)
                seen[rel] = (member.size, h.hexdigest())
            # Read to the end of the gzip stream, so a cut-off trailer (length and CRC) is noticed too.
            assert tar.fileobj is not None
            while tar.fileobj.read(BUFFER):
                pass
    except HomeciError:
        raise
    except (tarfile.ReadError, EOFError, zlib.error, OSError) as exc:
        text = str(exc).lower()
        if seen or manifest_data is not None or "end" in text or "eof" in text:
            raise HomeciError(f"{where} is truncated or damaged ({exc}): nothing was changed; use a complete "
                              "copy of the backup") from None
        raise HomeciError(f"{where} is not a homeci backup (not a gzip-compressed tar archive)") from None
    if manifest_data is None:
        if seen:
            raise HomeciError(f"{where} is truncated (its manifest, the last member, is missing): nothing "
                              "was changed; use a complete copy of the backup")
        raise HomeciError(f"{where} is not a homeci backup (no {MANIFEST})")
    try:
        manifest = Manifest.from_json(json.loads(manifest_data), where)
    except ValueError:
        raise HomeciError(f"{where}: its manifest is not JSON: not an archive homeci wrote") from None
    for rel, meta in sorted(manifest.files.items()):
        got = seen.pop(rel, None)
        if got is None:
            raise HomeciError(f"{where} lacks {rel}, which its manifest lists: the archive is incomplete")
        if got != (meta.get("size"), meta.get("sha256")):
            raise HomeciError(f"{where}: {rel} does not match its checksum in the manifest: the archive is "
                              "damaged")
    if seen:
        raise HomeciError(f"{where} holds {sorted(seen)[0]}, which its manifest does not list: not an "
                          "archive homeci wrote")
    return manifest


def clear(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
