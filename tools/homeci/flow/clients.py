"""Small API clients for the three services the flow talks to (only the calls it needs).

Gogs (``/api/v1``, basic auth as the admin), Drone (``/api``, the machine token as bearer) and the
registry (``/v2``, basic auth, OCI distribution API). Every failure is one line naming the call.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tarfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeci.errors import HomeciError
from homeci.flow.web import Web, basic, bearer, expect, json_body

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


@dataclass
class Gogs:
    """Gogs API as the admin. Gogs 0.14 accepts the admin's password (basic auth) only to create an
    access token; every other call here uses that token (``Authorization: token <sha1>``)."""

    web: Web
    base: str  # https://git.<domain>
    user: str
    password: str
    _token: str = ""

    def token(self) -> str:
        if not self._token:
            # unique per client: two clients made within one second must not ask for the same name
            name = f"homeci-flow-{int(time.time())}-{secrets.token_hex(3)}"
            resp = self.web.request("POST", f"{self.base}/api/v1/users/{self.user}/tokens",
                                    body=json.dumps({"name": name}).encode(),
                                    headers={"Content-Type": "application/json",
                                             **basic(self.user, self.password)})
            if resp.status == 401:
                raise HomeciError(f"Gogs refused the admin's password for {self.user} (HTTP 401): "
                                  "check Secret <release>-admin")
            created = expect(resp, (201,), f"Gogs POST /api/v1/users/{self.user}/tokens").json()
            self._token = str(created["sha1"])
        return self._token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token()}"}

    def _call(self, method: str, path: str, data: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        body, headers = json_body(data) if data is not None else (None, {})
        resp = self.web.request(method, f"{self.base}/api/v1{path}", body=body,
                                headers={**headers, **self._headers()})
        return expect(resp, ok, f"Gogs {method} /api/v1{path}").json() if resp.body else None

    def repo(self, owner: str, name: str) -> dict[str, Any] | None:
        resp = self.web.request("GET", f"{self.base}/api/v1/repos/{owner}/{name}", headers=self._headers())
        if resp.status == 404:
            return None
        result: dict[str, Any] = expect(resp, (200,), f"Gogs GET /api/v1/repos/{owner}/{name}").json()
        return result

    def create_repo(self, owner: str, name: str) -> dict[str, Any]:
        """Create ``owner/name`` (empty, public) as the admin; an existing repository is returned as is."""
        found = self.repo(owner, name)
        if found is not None:
            return found
        path = "/user/repos" if owner == self.user else f"/admin/users/{owner}/repos"
        result: dict[str, Any] = self._call("POST", path, {"name": name, "private": False}, ok=(201,))
        return result

    def delete_repo(self, owner: str, name: str) -> None:
        self._call("DELETE", f"/repos/{owner}/{name}", ok=(204, 404))


@dataclass
class Drone:
    web: Web
    base: str  # https://ci.<domain>
    token: str

    def call(self, method: str, path: str, data: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        body, headers = json_body(data) if data is not None else (None, {})
        resp = self.web.request(method, f"{self.base}/api{path}", body=body,
                                headers={**headers, **bearer(self.token)})
        expect(resp, ok, f"Drone {method} /api{path}")
        return resp.json() if resp.body else None

    def user(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/user")
        return result

    def sync(self) -> list[dict[str, Any]]:
        """Repository sync (what the SYNC button does); returns the user's repositories."""
        result: list[dict[str, Any]] = self.call("POST", "/user/repos?async=false") or []
        return result

    def activate(self, owner: str, name: str) -> dict[str, Any]:
        """Enable the repository: Drone creates the Gogs webhook. Idempotent."""
        result: dict[str, Any] = self.call("POST", f"/repos/{owner}/{name}")
        return result

    def builds(self, owner: str, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", f"/repos/{owner}/{name}/builds") or []
        return result

    def build(self, owner: str, name: str, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/repos/{owner}/{name}/builds/{number}")
        return result

    def logs(self, owner: str, name: str, build: int, stage: int, step: int) -> str:
        lines = self.call("GET", f"/repos/{owner}/{name}/builds/{build}/logs/{stage}/{step}", ok=(200, 404))
        if not isinstance(lines, list):  # 404: the step never ran (Drone answers {"message": ...})
            return ""
        return "".join(str(line.get("out", "")) for line in lines)

    def template(self, namespace: str, name: str) -> dict[str, Any] | None:
        resp = self.web.request("GET", f"{self.base}/api/templates/{namespace}/{name}",
                                headers=bearer(self.token))
        if resp.status == 404:
            return None
        result: dict[str, Any] = expect(resp, (200,), f"Drone GET /api/templates/{namespace}/{name}").json()
        return result


@dataclass
class Registry:
    web: Web
    base: str  # https://registry.<domain>
    user: str
    password: str

    def _auth(self) -> dict[str, str]:
        return basic(self.user, self.password)

    def wait_answering(self, timeout: float = 120) -> None:
        """Until the registry itself answers ``GET /v2/`` with these credentials (200) through its public
        name: right after its pod is Ready, Traefik may still answer 404 (no route yet) or 502/503."""
        from homeci.kubeaccess import wait_for

        def check() -> str | None:
            resp = self.web.request("GET", f"{self.base}/v2/", headers=self._auth(), timeout=10)
            # 401 too, for a while: the registry re-reads its htpasswd file when the kubelet updates it
            return None if resp.status == 200 else f"HTTP {resp.status}"

        wait_for(f"the registry at {self.base}", check, timeout=timeout)

    def manifest(self, repo: str, ref: str) -> tuple[str, dict[str, Any]] | None:
        """(digest, manifest) of ``repo:ref``, or None when it is not there."""
        resp = self.web.request("GET", f"{self.base}/v2/{repo}/manifests/{ref}",
                                headers={**self._auth(), "Accept": MANIFEST_TYPES})
        if resp.status == 404:
            return None
        expect(resp, (200,), f"registry GET /v2/{repo}/manifests/{ref}")
        digest = resp.headers.get("docker-content-digest") or (
            "sha256:" + hashlib.sha256(resp.body).hexdigest())
        return digest, resp.json()

    def blob(self, repo: str, digest: str) -> bytes:
        resp = self.web.request("GET", f"{self.base}/v2/{repo}/blobs/{digest}", headers=self._auth(),
                                timeout=120)
        if resp.status in (301, 302, 303, 307):
            raise HomeciError(f"registry redirected the blob {digest} of {repo}: this client cannot follow")
        return expect(resp, (200,), f"registry GET /v2/{repo}/blobs/{digest}").body

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.web.request("HEAD", f"{self.base}/v2/{repo}/blobs/{digest}", headers=self._auth())
        return resp.status == 200

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.has_blob(repo, digest):
            return digest
        uploads = f"/v2/{repo}/blobs/uploads/"
        start = expect(self.web.request("POST", f"{self.base}{uploads}", headers=self._auth()),
                       (202,), f"registry POST {uploads}")
        location = start.headers.get("location", "")
        if not location:
            raise HomeciError(f"registry gave no upload location for {repo}")
        url = urllib.parse.urljoin(self.base + "/", location)
        sep = "&" if "?" in url else "?"
        expect(self.web.request("PUT", f"{url}{sep}digest={digest}", body=data, timeout=300,
                                headers={**self._auth(), "Content-Type": "application/octet-stream"}),
               (201,), f"registry PUT blob {digest} to {repo}")
        return digest

    def push_manifest(self, repo: str, tag: str, manifest: bytes, media_type: str) -> str:
        expect(self.web.request("PUT", f"{self.base}/v2/{repo}/manifests/{tag}", body=manifest,
                                headers={**self._auth(), "Content-Type": media_type}),
               (201,), f"registry PUT /v2/{repo}/manifests/{tag}")
        return "sha256:" + hashlib.sha256(manifest).hexdigest()


def push_oci_layout(registry: Registry, blobs: dict[str, bytes], manifest: bytes, repo: str, tag: str) -> str:
    """Push one image (its manifest and the blobs it names) to ``repo:tag``; returns the manifest digest."""
    doc = json.loads(manifest)
    for desc in [doc["config"], *doc.get("layers", [])]:
        data = blobs.get(desc["digest"])
        if data is None:
            raise HomeciError(f"image for {repo}:{tag} lacks blob {desc['digest']}")
        registry.push_blob(repo, data)
    media = doc.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
    return registry.push_manifest(repo, tag, manifest, media)


def read_oci_archive(path: Path) -> tuple[dict[str, bytes], bytes]:
    """(blobs by digest, the first manifest) of an OCI image archive (``homeci.images`` writes them)."""
    blobs: dict[str, bytes] = {}
    index: dict[str, Any] = {}
    try:
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is None:
                    continue
                if m.name.lstrip("./") == "index.json":
                    index = json.loads(f.read())
                elif m.name.lstrip("./").startswith("blobs/sha256/"):
                    blobs["sha256:" + m.name.rsplit("/", 1)[1]] = f.read()
    except (OSError, tarfile.TarError) as exc:
        raise HomeciError(f"{path}: not a readable OCI image archive ({exc})") from None
    manifests = index.get("manifests") or []
    if not manifests or manifests[0].get("digest") not in blobs:
        raise HomeciError(f"{path}: no manifest in index.json")
    return blobs, blobs[manifests[0]["digest"]]


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's FROM lines name (stage aliases and ``scratch`` left out)."""
    bases: list[str] = []
    stages: set[str] = set()
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            image = next((w for w in words[1:] if not w.startswith("--")), "")
            if image and image != "scratch" and image not in stages:
                bases.append(image)
            if len(words) >= 4 and words[-2].upper() == "AS":
                stages.add(words[-1])
    return bases


def mirror_path(image: str) -> str:
    """Where kaniko asks a registry mirror for ``image``: Docker Hub's path without the host
    (``python:3`` → ``library/python:3``, ``docker.io/x/y:1`` → ``x/y:1``)."""
    name = image
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        if first not in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            raise HomeciError(f"{image}: not a Docker Hub image; a mirror only stands in for Docker Hub")
        name = name.split("/", 1)[1]
    if "/" not in name:
        name = "library/" + name
    return name
