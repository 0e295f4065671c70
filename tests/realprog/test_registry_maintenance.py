"""The registry's garbage-collection window (issue 21, item 6) with the real registry v3.1.2: the chart
renders the collector to delete only while the registry serves read-only (`registry.maintenance.readOnly`),
a push during the window (started while the collector runs) is refused with an error a client
understands (HTTP 405 Method Not Allowed: distribution registers no write handler when read-only) and
changes nothing, the collector removes only what no tag references, every
tagged image still pulls with matching digests, and after the window pushes work again."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.realprog_harness import OCI, Direct, LoopbackRegistry, binary, render
from homeci_testing.support import RELEASE

WINDOW = ("registry.maintenance.readOnly=true", "registry.garbageCollect.enabled=true",
          "registry.garbageCollect.deleteUntagged=true")


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
