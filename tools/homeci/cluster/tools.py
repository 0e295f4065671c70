"""The toolchain tools each provider runs, in a module without third-party imports: the prerequisite
check (:mod:`homeci.cluster.prereqs`) reads them from nox's own Python, before the virtualenv exists."""

from __future__ import annotations

# The real node (netns): control plane, container runtime, CNI plugins.
NETNS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
         "containerd", "containerd-shim-runc-v2", "ctr", "runc", "cni-bridge", "cni-host-local",
         "cni-loopback", "cni-portmap")
# The simulated cluster (sim): kwok plays the nodes and pods.
SIM = ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The tools inside the images the stack's default render names (built when the nodes build from source).
IMAGES = ("registry", "gogs", "drone-server", "drone-runner-kube", "kaniko-executor", "kaniko-docker",
          "kubectl", "pause", "coredns")
