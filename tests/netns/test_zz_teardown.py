"""``down`` leaves nothing: checked, not assumed (runs last: it stops the session's cluster)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from homeci.cluster.netns import NetnsCluster
from homeci.cluster.sandbox import cgroups
from homeci.cluster.sandbox.box import host_iptables_rules


def test_down_leaves_nothing_behind(netns_cluster: NetnsCluster, host_baseline: dict[str, Any]) -> None:
    info = netns_cluster.sandbox.info()
    pids = netns_cluster.pids()
    assert "holder" in pids and "kubelet" in pids
    holder_netns = Path(f"/proc/{pids['holder']}/ns/net").readlink()
    start = time.monotonic()
    assert netns_cluster.down()
    took = time.monotonic() - start
    assert netns_cluster.leftovers() == [], netns_cluster.leftovers()
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

    other = NetnsCluster(f"pt{os.getpid()}-int")
    other.down()
    homeci = Path(sys.executable).with_name("homeci")
    proc = subprocess.Popen([str(homeci), "cluster", "up", "--provider", "netns", "--no-stack", "--name",
                             other.name],
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
