"""Provider ``kind``: ``kindcluster`` (the lifecycle, both ways: the machine's Docker engine with upstream
images, or offline), ``kindconfig`` (kind's Cluster configuration), ``engine`` (the machine's Docker
engine, or homeci's contained one) and ``runtime_wrapper`` (the contained engine's runtime). The offline
node image's recipe is in :mod:`homeci.images.recipes` (``KIND_NODE_IMAGE``), its files in
``homeci/data/kind-node``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeci.cluster.kind.kindcluster import KindCluster

__all__ = ["KindCluster"]


def __getattr__(name: str) -> Any:
    # KindCluster on first use, so ``homeci.cluster.kind.engine`` imports without yaml or the Kubernetes
    # client (the prerequisite check runs in nox's own Python)
    if name == "KindCluster":
        from homeci.cluster.kind.kindcluster import KindCluster

        return KindCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
