"""Provider ``kind``: ``kindcluster`` (the lifecycle, both ways: the machine's Docker engine with upstream
images, or offline), ``kindconfig`` (kind's Cluster configuration), ``engine`` (the machine's Docker
engine, or homeci's contained one) and ``runtime_wrapper`` (the contained engine's runtime). The offline
node image's recipe is in :mod:`homeci.images.recipes` (``KIND_NODE_IMAGE``), its files in
``homeci/data/kind-node``."""

from homeci.cluster.kind.kindcluster import KindCluster

__all__ = ["KindCluster"]
