"""The registry's garbage-collection window (issue 21, item 6) with the real registry v3.1.2: the chart
renders the collector to delete only while the registry serves read-only (`registry.maintenance.readOnly`),
a push during the window (started while the collector runs) is refused with an error a client
understands (HTTP 405 Method Not Allowed: distribution registers no write handler when read-only) and
changes nothing, the collector removes only what no tag references, every
tagged image still pulls with matching digests, and after the window pushes work again."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from realprog_harness import LoopbackRegistry, binary, render

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.support import RELEASE

OCI = "application/vnd.oci.image.manifest.v1+json"
WINDOW = ("registry.maintenance.readOnly=true", "registry.garbageCollect.enabled=true",
          "registry.garbageCollect.deleteUntagged=true")


class Direct:
    """Plain HTTP to the registry's loopback port with the rendered credentials (no Traefik needed:
    what is under test is the registry's own answer)."""

    def __init__(self, server: LoopbackRegistry, objects: list[Manifest]) -> None:
        import base64

        data = manifests.get(objects, "Secret", f"{RELEASE}-registry-auth").obj["data"]
        user, password = (base64.b64decode(data[k]).decode() for k in ("username", "password"))
        self.url = server.url
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(path)
        target = self.url + parts.path + (f"?{parts.query}" if parts.query else "")
        req = urllib.request.Request(target, data=body, method=method,
                                     headers={"Authorization": self.auth, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def push_blob(self, repo: str, data: bytes) -> tuple[int, bytes]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers, body = self.call("POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202:
            return status, body
        loc = headers["location"]
        sep = "&" if "?" in loc else "?"
        status, _, body = self.call("PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", data,
                                    {"Content-Type": "application/octet-stream"})
        return status, body

    def push_image(self, repo: str, tag: str, text: str) -> tuple[int, str, list[str]]:
        """(manifest PUT status, manifest digest, blob digests) of a one-layer image."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("file.txt")
            content = text.encode()
            info.size, info.mtime = len(content), 0
            tar.addfile(info, io.BytesIO(content))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
        for blob in (config, layer):
            status, body = self.push_blob(repo, blob)
            assert status == 201, f"blob push to {repo} answered {status} {body[:200]!r}"
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI,
            "config": _desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)]}).encode()
        status, _, _ = self.call("PUT", f"/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": OCI})
        return status, "sha256:" + hashlib.sha256(manifest).hexdigest(), [_desc("", b)["digest"]
                                                                            for b in (config, layer)]

    def pulls_intact(self, repo: str, tag: str) -> list[str]:
        """What is wrong with pulling ``repo:tag`` (empty: manifest and every blob match their digests)."""
        status, _, body = self.call("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI})
        if status != 200:
            return [f"manifest {repo}:{tag} answered {status}"]
        problems = []
        doc = json.loads(body)
        for desc in [doc["config"], *doc["layers"]]:
            status, _, blob = self.call("GET", f"/v2/{repo}/blobs/{desc['digest']}")
            if status != 200 or "sha256:" + hashlib.sha256(blob).hexdigest() != desc["digest"]:
                problems.append(f"blob {desc['digest']} of {repo}:{tag}: HTTP {status}, {len(blob)} bytes")
        return problems


def _desc(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def _blob_files(root: Path) -> set[str]:
    return {p.parent.name for p in root.rglob("blobs/sha256/*/*/data")}


def _gc_args(objs: list[Manifest]) -> list[str]:
    cron = manifests.get(objs, "CronJob", f"{RELEASE}-registry-gc").obj
    return list(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])


def test_the_collector_deletes_only_in_the_read_only_window() -> None:
    normal = render("default", "registry.garbageCollect.enabled=true")
    window = render("default", *WINDOW)
    args = {name: _gc_args(objs) for name, objs in (("normal", normal), ("window", window))}
    cron = f"CronJob/{RELEASE}-registry-gc"
    assert "--dry-run" in args["normal"], f"{cron} deletes outside the window: {args}"
    assert "--dry-run" not in args["window"], f"{cron} only reports in the window: {args}"


def test_a_push_during_garbage_collection_is_refused_and_nothing_is_corrupted(tmp_path: Path) -> None:
    registry_bin = binary("registry")
    normal = render("default")
    # 1. Normal operation: two images; the second is then untagged (its manifest deleted).
    with LoopbackRegistry(normal, tmp_path / "before", registry_bin) as server:
        client = Direct(server, normal)
        status, _, kept_blobs = client.push_image("homeci/kept", "v1", "kept")
        assert status == 201
        status, dropped, dropped_blobs = client.push_image("homeci/dropped", "v1", "dropped")
        assert status == 201
        assert client.call("DELETE", f"/v2/homeci/dropped/manifests/{dropped}")[0] == 202
        storage = server.pod.host_path("/var/lib/registry")
        saved = tmp_path / "storage"
        shutil.copytree(storage, saved)
    assert {d.split(":")[1] for d in kept_blobs + dropped_blobs} <= _blob_files(saved)

    # 2. The maintenance window: the registry read-only on the same storage, the collector running.
    window = render("default", *WINDOW)
    gc_args = _gc_args(window)
    with LoopbackRegistry(window, tmp_path / "window", registry_bin) as server:
        storage = server.pod.host_path("/var/lib/registry")
        shutil.rmtree(storage)
        shutil.copytree(saved, storage)
        client = Direct(server, window)
        collector = subprocess.Popen([str(registry_bin), *gc_args[:-1], str(server.config_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        refusals: list[tuple[str, int, bytes]] = []

        def push_during_gc() -> None:
            status, _, body = client.call("POST", "/v2/homeci/new/blobs/uploads/")
            refusals.append(("blob upload", status, body))
            status, _, body = client.call("PUT", "/v2/homeci/kept/manifests/v2", b"{}", {"Content-Type": OCI})
            refusals.append(("manifest push", status, body))

        pusher = threading.Thread(target=push_during_gc)
        pusher.start()
        out, _ = collector.communicate(timeout=120)
        pusher.join(timeout=60)
        assert collector.returncode == 0, f"registry garbage-collect failed: {out[-1500:]}"
        assert [r[0] for r in refusals] == ["blob upload", "manifest push"], f"push attempts: {refusals}"
        for what, status, body in refusals:
            # distribution registers no write handler in read-only mode: HTTP 405 (what clients print,
            # e.g. kaniko: "unexpected status code 405 Method Not Allowed"), nothing written.
            assert status == 405, f"{what} during the window answered {status}, not 405: {body[:200]!r}"
        assert not client.pulls_intact("homeci/kept", "v1"), client.pulls_intact("homeci/kept", "v1")
        tags = json.loads(client.call("GET", "/v2/homeci/kept/tags/list")[2]).get("tags")
        assert tags == ["v1"], f"the refused manifest push left a tag: {tags}"
        after_gc = _blob_files(storage)
        shutil.rmtree(saved)
        shutil.copytree(storage, saved)
    assert {d.split(":")[1] for d in kept_blobs} <= after_gc, "the collector deleted a blob a tag still uses"
    assert not {d.split(":")[1] for d in dropped_blobs} & after_gc, (
        f"the collector left the untagged image's blobs: {out[-800:]}")

    # 3. After the window: read-write again on the collected storage, pushes work, the old image pulls.
    with LoopbackRegistry(normal, tmp_path / "after", registry_bin) as server:
        storage = server.pod.host_path("/var/lib/registry")
        shutil.rmtree(storage)
        shutil.copytree(saved, storage)
        client = Direct(server, normal)
        assert not client.pulls_intact("homeci/kept", "v1")
        status, _, _ = client.push_image("homeci/kept", "v2", "after the window")
        assert status == 201, f"a push after the window answered {status}"
        assert not client.pulls_intact("homeci/kept", "v2")


@pytest.fixture(autouse=True)
def _registry_built() -> None:
    binary("registry")
