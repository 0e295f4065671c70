"""``down`` leaves nothing: checked, not assumed (runs last: it stops the session's cluster). What it keeps
on purpose (``keep_images``, as ``homeci cluster down`` does) is the node's image store, images only, and
the next new node starts with it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from homeci.cluster.netns import NetnsCluster
from homeci.cluster.sandbox import cgroups
from homeci.cluster.sandbox.box import host_iptables_rules
from homeci_testing.clusters import TEST_IMAGE

# An image no recipe builds (a pushed app's, say): a kept store drops it.
FOREIGN = "example.test/not-built-here:1"


def test_down_leaves_nothing_behind(netns_cluster: NetnsCluster, host_baseline: dict[str, Any]) -> None:
    info = netns_cluster.sandbox.info()
    pids = netns_cluster.pids()
    assert "holder" in pids and "kubelet" in pids
    holder_netns = Path(f"/proc/{pids['holder']}/ns/net").readlink()
    kept = netns_cluster.layout.kept_images
    netns_cluster._ctr("images", "tag", TEST_IMAGE, FOREIGN)
    start = time.monotonic()
    assert netns_cluster.down(keep_images=True)
    took = time.monotonic() - start
    assert netns_cluster.leftovers() == [], netns_cluster.leftovers()
    assert kept.is_dir(), f"down(keep_images=True) kept no image store in {kept}: {netns_cluster.not_kept}"
    assert not any(Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in pids.values())
    # No process anywhere still sits in the cluster's network namespace.
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                assert (proc / "ns" / "net").readlink() != holder_netns, f"pid {proc.name} in the netns"
            except OSError:
                continue
    hs = cgroups.hierarchies()
    assert cgroups.leftovers(hs, info["parent"], info["created_cgroups"]) == []
    assert host_iptables_rules() == host_baseline["iptables"]
    netns = sorted(Path("/run/netns").glob("*")) if Path("/run/netns").is_dir() else None
    assert netns == host_baseline["netns"]
    assert not netns_cluster.dir.exists()
    assert took < 60, f"down took {took:.1f}s"


def test_sigterm_during_up_tears_everything_down(netns_cluster: NetnsCluster) -> None:
    """SIGTERM while ``homeci cluster up --provider netns`` is starting: the command cleans up before
    exiting."""
    import os
    import signal
    import subprocess
    import sys

    # its own parent folder: the start it interrupts neither takes nor drops the store the last down kept
    root = netns_cluster.layout.state.parent / f".pt{os.getpid()}-int"
    other = NetnsCluster(f"pt{os.getpid()}-int", root=root)
    other.down()
    homeci = Path(sys.executable).with_name("homeci")
    proc = subprocess.Popen([str(homeci), "cluster", "up", "--provider", "netns", "--no-stack", "--name",
                             other.name], env={**os.environ, "HOMECI_NETNS_WORKDIR": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "kube-apiserver" not in other.pids():
            time.sleep(0.1)
        assert "kube-apiserver" in other.pids(), "up never started the API server"
        info = other.sandbox.info()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert other.leftovers() == [], other.leftovers()
    assert cgroups.leftovers(cgroups.hierarchies(), info["parent"], info["created_cgroups"]) == []
    other.down()  # the failed start kept its logs for the error message; remove them too
    assert not other.dir.exists()
    root.rmdir()


def test_the_next_node_starts_with_the_kept_images(netns_cluster: NetnsCluster) -> None:
    """A new node (another name) takes the store the last ``down`` kept: the test image the old node
    loaded is there without being imported, no container or sandbox of the old node's pods came back,
    the image no recipe builds is gone; its own ``down`` keeps the store again for the next one (CI's
    integration stage after this tier)."""
    import os

    kept = netns_cluster.layout.kept_images
    assert kept.is_dir(), f"no kept image store in {kept} (test_down_leaves_nothing_behind keeps one)"
    node = NetnsCluster(f"pt{os.getpid()}-kept")
    node.down()
    try:
        node.up(timeout=300)
        assert not kept.exists(), f"{node.describe()} did not take the kept store {kept}"
        held = node.image_digests()
        assert TEST_IMAGE in held, f"{node.describe()} lacks {TEST_IMAGE}, which the kept store held"
        assert FOREIGN not in held, f"{node.describe()} kept {FOREIGN}: no recipe builds it"
        pods = {}
        for line in node._ctr("containers", "ls", "-q").stdout.split():
            info = node._ctr("containers", "info", line).stdout
            labels = json.loads(info).get("Labels") or {}
            pods[line[:12]] = labels.get("io.kubernetes.pod.name", "?")
        stale = {c: p for c, p in pods.items() if not p.startswith("coredns-")}
        assert not stale, f"{node.describe()} has containers of the old node's pods: {stale}"
        assert node.down(keep_images=True)
        assert kept.is_dir(), f"{node.describe()}: down(keep_images=True) kept no store: {node.not_kept}"
    finally:
        node.down()  # after a failure; a no-op otherwise
    assert not node.dir.exists() and node.leftovers() == [], node.leftovers()
