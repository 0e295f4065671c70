"""T3 local fixtures: one real local cluster (``homeci cluster local``) per test session.

Skipped, with the reason, where the host cannot run it: not Linux/root, no network namespaces, host
programs missing, or the node's toolchain binaries not built (`homeci toolchain install` builds them).
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localhelpers import TEST_IMAGE, create_namespace, delete_namespace

from homeci.cluster.local import LocalCluster, missing_tools, unsupported_reason
from homeci.cluster.local import layout as local_layout
from homeci.cluster.local.cluster import host_iptables_chains

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.local)


def skip_reason() -> str | None:
    reason = unsupported_reason()
    if reason:
        return reason
    missing = missing_tools()
    if missing:
        return (f"local-cluster binaries not built: {', '.join(missing)} "
                f"(run `homeci toolchain install {' '.join(missing)}`)")
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _remove_stale_clusters() -> None:
    """Clusters of earlier pytest processes that died without cleaning up (kill -9, power loss)."""
    base = local_layout.root()
    for d in base.glob("pt*") if base.is_dir() else []:
        pid = d.name.removeprefix("pt")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            LocalCluster(d.name).down()


@pytest.fixture(scope="session")
def host_baseline() -> dict[str, Any]:
    """What the host looks like before the cluster: its KUBE-* iptables rules (there should be none)."""
    return {"iptables": host_iptables_chains(), "netns": sorted(Path("/run/netns").glob("*"))
            if Path("/run/netns").is_dir() else None}


@pytest.fixture(scope="session")
def local_cluster(host_baseline: dict[str, Any]) -> Iterator[LocalCluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from homeci import images

    _remove_stale_clusters()
    cluster = LocalCluster(os.environ.get("HOMECI_LOCAL_TEST_CLUSTER", f"pt{os.getpid()}"))
    cluster.down()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        from homeci.cluster.local.cluster import cluster_images

        images.build([*cluster_images(), TEST_IMAGE])
        cluster.up(timeout=300)
        cluster.load_images([images.archive_path(TEST_IMAGE)])
        yield cluster
    finally:
        cluster.down()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def api(local_cluster: LocalCluster) -> Any:
    return local_cluster.api()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    """A fresh Pod Security ``restricted`` namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    create_namespace(api, name)
    try:
        yield name
    finally:
        delete_namespace(api, name)
