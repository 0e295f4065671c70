"""Provider ``sim``: the real control plane with simulated (kwok) nodes. ``simcluster`` (the lifecycle),
``kwokctl`` (its configuration file: every binary local) and ``stages`` (how kwok plays nodes and pods)."""

from homeci.cluster.sim.simcluster import SimCluster

__all__ = ["SimCluster"]
