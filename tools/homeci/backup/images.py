"""The registry's images, through its own API (``/v2``): every repository and tag with its manifests
and blobs, copied out and pushed back. The API gives a consistent view whatever the storage
(filesystem or S3) and whatever is being pushed meanwhile; the files on the volume would not."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeci.errors import HomeciError
from homeci.flow.clients import MANIFEST_TYPES, Registry
from homeci.flow.web import expect

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
Progress = Callable[[str], None]


def _get(reg: Registry, path: str, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
    headers = {"Authorization": reg._auth()["Authorization"]}
    if accept:
        headers["Accept"] = accept
    resp = expect(reg.web.request("GET", f"{reg.base}{path}", headers=headers, timeout=300), (200,),
                  f"registry GET {path}")
    return resp.body, dict(resp.headers)


def repositories(reg: Registry) -> list[str]:
    repos: list[str] = []
    path = "/v2/_catalog?n=500"
    while path:
        body, headers = _get(reg, path)
        repos += json.loads(body).get("repositories") or []
        link = headers.get("link", "")
        path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
    return sorted(repos)


def tags(reg: Registry, repo: str) -> list[str]:
    body, _ = _get(reg, f"/v2/{repo}/tags/list")
    return sorted(json.loads(body).get("tags") or [])


def dump(reg: Registry, into: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Write ``index.json`` and ``blobs/sha256/<hex>`` under ``into``; returns the index."""
    blobs = into / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"repositories": {}}

    def store(data: bytes, digest: str) -> None:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or hashlib.sha256(data).hexdigest() != hexd:
            raise HomeciError(f"registry sent content that does not match digest {digest}")
        (blobs / hexd).write_bytes(data)

    def manifest(repo: str, ref: str) -> tuple[str, str]:
        body, headers = _get(reg, f"/v2/{repo}/manifests/{ref}", MANIFEST_TYPES)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        store(body, digest)
        doc = json.loads(body)
        media = str(doc.get("mediaType") or headers.get("content-type", "").split(";")[0])
        if media in INDEX_TYPES:
            for child in doc.get("manifests") or []:
                if not (blobs / child["digest"].split(":", 1)[1]).exists():
                    manifest(repo, child["digest"])
        else:
            for desc in [doc.get("config"), *(doc.get("layers") or [])]:
                if desc and not (blobs / desc["digest"].split(":", 1)[1]).exists():
                    store(reg.blob(repo, desc["digest"]), desc["digest"])
        return digest, media

    for repo in repositories(reg):
        for tag in tags(reg, repo):
            if progress:
                progress(f"registry {repo}:{tag}")
            digest, media = manifest(repo, tag)
            index["repositories"].setdefault(repo, {})[tag] = {"digest": digest, "mediaType": media}
    (into / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return index


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
