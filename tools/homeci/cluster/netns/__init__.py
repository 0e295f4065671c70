"""Provider ``netns`` (also accepted as ``local``, its first name): one real Kubernetes node on a Linux host
without Docker, inside a network namespace of its own.

Modules by concern: ``layout`` (paths, network plan), ``pki`` (certificates, kubeconfigs), ``daemons``
(configuration files and command lines of etcd, the control plane, containerd, kubelet, kube-proxy) and
``netnscluster`` (the lifecycle). The namespaces, cgroups, forwarder and processes come from
:mod:`homeci.cluster.sandbox`; CoreDNS and storage from :mod:`homeci.cluster.addons`.
"""

from homeci.cluster.netns.netnscluster import NetnsCluster, missing_tools

__all__ = ["NetnsCluster", "missing_tools"]
