"""T1 fixtures: one simulated cluster per test session, one Pod Security restricted namespace per test.

The cluster is the real control plane (built into the homeci toolchain cache) with kwok nodes; it is
started once, and stopped at the end of the session even when tests fail or are interrupted.
These tests skip only when the binaries are absent AND cannot be built (no Go).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeci import toolchain
from homeci.cluster.sim import SimCluster
from homeci.cluster.sim.simcluster import TOOLS
from homeci.helm import Helm
from homeci_testing.clusters import Deployments, create_namespace, delete_kept_namespaces, delete_namespace


def _missing_and_unbuildable() -> str | None:
    missing = [name for name in TOOLS if toolchain.status(name)[0] == "missing"]
    if missing and shutil.which("go") is None:
        return (f"simulated-cluster binaries missing ({', '.join(missing)}) and Go is not installed to build "
                "them: install Go >= 1.26 or set the HOMECI_* overrides of toolchain/toolchain.toml")
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _remove_stale_clusters() -> None:
    """Delete clusters of earlier pytest processes that died without cleaning up (kill -9, power loss)."""
    base = SimCluster("pytest-0").root / "clusters"
    for d in base.glob("pytest-*") if base.is_dir() else []:
        pid = d.name.removeprefix("pytest-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            SimCluster(d.name).down()


@pytest.fixture(scope="session")
def sim_cluster() -> Iterator[SimCluster]:
    reason = _missing_and_unbuildable()
    if reason:
        pytest.skip(reason)
    # One cluster per pytest process, so concurrent sessions (two shells, CI + a developer) never share.
    _remove_stale_clusters()
    name = os.environ.get("HOMECI_SIM_TEST_CLUSTER", f"pytest-{os.getpid()}")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # pytest-xdist: a cluster per worker, even when named
    if worker and "HOMECI_SIM_TEST_CLUSTER" in os.environ:
        name = f"{name}-{worker}"
    cluster = SimCluster(name)
    cluster.down()
    # A SIGTERM (CI cancelling the job) becomes KeyboardInterrupt, so pytest still tears down and the
    # cluster's processes stop; Ctrl-C already works that way.
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        cluster.up(timeout=240)
        yield cluster
    finally:
        cluster.down()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def api(sim_cluster: SimCluster) -> Any:
    return sim_cluster.api()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api: Any, sim_cluster: SimCluster) -> Iterator[str]:
    """A fresh namespace labelled Pod Security enforce=restricted; releases in it are uninstalled after."""
    base = request.node.name.lower().replace("_", "-")
    base = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    create_namespace(api, name)
    deps = Deployments()
    request.node.sim_deployments = deps
    yield name
    deps.cleanup(api)
    # What the releases kept on uninstall outside their namespace (the umbrella's app namespaces carry
    # helm.sh/resource-policy: keep, so apps survive an uninstall): gone before the next test installs.
    delete_kept_namespaces(api, name)
    # Unique name, nothing reuses it: no need to wait for the namespace controller.
    delete_namespace(api, name, wait=False)


@pytest.fixture
def deployments(request: pytest.FixtureRequest, namespace: str) -> Deployments:
    """Tracks helm releases a test creates so the namespace fixture removes them (and what they keep)."""
    deps: Deployments = request.node.sim_deployments
    return deps


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def helm(request: pytest.FixtureRequest, sim_cluster: SimCluster) -> Helm:
    return Helm(request.param, kubeconfig=sim_cluster.kubeconfig)


@pytest.fixture
def helm3(sim_cluster: SimCluster) -> Helm:
    return Helm(3, kubeconfig=sim_cluster.kubeconfig)
