"""Local clusters for homeci: the simulated cluster (real control plane + kwok) and, later, kind."""

from homeci.cluster.sim import DEFAULT_NAME, SimCluster, Status

__all__ = ["DEFAULT_NAME", "SimCluster", "Status"]
