"""The registry's images, through its own API (``/v2``): every repository and tag with its manifests
and blobs, copied out and pushed back. The API gives a consistent view whatever the storage
(filesystem or S3) and whatever is being pushed meanwhile; the files on the volume would not."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from homeci.backup.script import SCRIPT
from homeci.errors import HomeciError
from homeci.flow.clients import Registry

INDEX_TYPES: tuple[str, ...] = SCRIPT.Registry.INDEX
Progress = Callable[[str], None]


def dump(reg: Registry, into: Path) -> list[str]:
    """Write ``index.json`` and ``blobs/sha256/<hex>`` under ``into`` with the chart script's dump (the
    scheduled backup's, so both archives hold the registry alike), reaching the registry through
    ``reg.web`` (a port-forward); returns ``repository:tag`` of every image."""
    def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        resp = reg.web.request("GET", url, headers=headers, timeout=300)
        return resp.status, resp.body, dict(resp.headers)

    try:
        listed: list[str] = SCRIPT.Registry(reg.base, reg.user, reg.password, fetch).dump(into)
    except SCRIPT.BackupError as exc:
        raise HomeciError(f"{exc}: is the registry Ready (`homeci status`)? --no-registry leaves images "
                          "out") from None
    return listed


def load(reg: Registry, source: Path, progress: Progress | None = None) -> int:
    """Push every tag of ``source/index.json`` back (blobs first, then manifests); returns the count."""
    index = json.loads((source / "index.json").read_text())
    blobs = source / "blobs" / "sha256"

    def read(digest: str) -> bytes:
        path = blobs / digest.split(":", 1)[1]
        if not path.is_file():
            raise HomeciError(f"the archive's registry lacks blob {digest}")
        return path.read_bytes()

    def put(repo: str, digest: str, ref: str) -> None:
        body = read(digest)
        doc = json.loads(body)
        media = str(doc.get("mediaType") or "application/vnd.oci.image.manifest.v1+json")
        if media in INDEX_TYPES:
            for child in doc.get("manifests") or []:
                put(repo, child["digest"], child["digest"])
        else:
            for desc in [doc.get("config"), *(doc.get("layers") or [])]:
                if desc:
                    reg.push_blob(repo, read(desc["digest"]))
        reg.push_manifest(repo, urllib.parse.quote(ref, safe=":"), body, media)

    count = 0
    for repo, by_tag in sorted(index.get("repositories", {}).items()):
        for tag, entry in sorted(by_tag.items()):
            if progress:
                progress(f"registry {repo}:{tag}")
            put(repo, entry["digest"], tag)
            count += 1
    return count
