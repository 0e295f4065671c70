"""Real-node fixtures (provider netns): one bare cluster per test session.

Skipped, with the reason, where the host cannot run it: not Linux/root, no network namespaces, host
programs missing, or the node's toolchain binaries not built (`homeci toolchain install` builds them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeci.cluster import prereqs
from homeci.cluster.netns import NetnsCluster, missing_tools
from homeci.cluster.netns import layout as netns_layout
from homeci.cluster.netns.netnscluster import cluster_images
from homeci.cluster.provider import terminate_as_interrupt
from homeci.cluster.sandbox.box import host_iptables_rules
from homeci_testing.clusters import TEST_IMAGE, create_namespace, delete_namespace


def skip_reason() -> str | None:
    problems = prereqs.host_problems("netns")
    if problems:
        return problems[0]
    missing = missing_tools()
    if missing:
        return (f"real-node binaries not built: {', '.join(missing)} "
                f"(run `homeci toolchain install {' '.join(missing)}`)")
    return None


def _remove_stale_clusters() -> None:
    """Clusters of earlier pytest processes that died without cleaning up (kill -9, power loss)."""
    base = netns_layout.root()
    for d in base.glob("pt*") if base.is_dir() else []:
        pid = d.name.removeprefix("pt").split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            NetnsCluster(d.name).down()


@pytest.fixture(scope="session")
def host_baseline() -> dict[str, Any]:
    """What the host looks like before the cluster: its KUBE-* iptables rules (there should be none)."""
    return {"iptables": host_iptables_rules(), "netns": sorted(Path("/run/netns").glob("*"))
            if Path("/run/netns").is_dir() else None}


@pytest.fixture(scope="session")
def netns_cluster(host_baseline: dict[str, Any]) -> Iterator[NetnsCluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from homeci import images

    _remove_stale_clusters()
    cluster = NetnsCluster(os.environ.get("HOMECI_NETNS_TEST_CLUSTER", f"pt{os.getpid()}"))
    cluster.down()
    # A SIGTERM (CI cancelling the job) becomes KeyboardInterrupt, so pytest still tears down.
    with terminate_as_interrupt():
        try:
            images.build([*cluster_images(), TEST_IMAGE])
            cluster.up(timeout=300)
            cluster.load_images([TEST_IMAGE])
            yield cluster
        finally:
            cluster.down()


@pytest.fixture
def api(netns_cluster: NetnsCluster) -> Any:
    return netns_cluster.api()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    """A fresh Pod Security ``restricted`` namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    create_namespace(api, name)
    try:
        yield name
    finally:
        delete_namespace(api, name, wait=False, grace_period=0)
