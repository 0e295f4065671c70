"""The local real cluster: one real Kubernetes node on a Linux host without Docker.

Modules by concern: ``layout`` (paths, network plan), ``pki`` (certificates, kubeconfigs),
``cgroups`` (the cluster's cgroup parent in every hierarchy), ``holder`` (the process owning the
network and mount namespaces), ``procs`` (start/stop by pid), ``config`` (daemon configuration and
flags), ``addons`` (CoreDNS, storage), ``forward`` (127.0.0.1 -> namespace), ``cluster`` (lifecycle).
"""

from homeci.cluster.local.cluster import DEFAULT_NAME, LocalCluster, Status, missing_tools, unsupported_reason

__all__ = ["DEFAULT_NAME", "LocalCluster", "Status", "missing_tools", "unsupported_reason"]
