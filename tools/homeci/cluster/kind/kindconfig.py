"""The kind Cluster configuration (pure functions, unit-tested without Docker).

* The API server on 127.0.0.1 and a fixed port (the contained engine's forwarder relays the same port
  from the host), Traefik reached through its node port :data:`HTTPS_NODE_PORT` (a host port mapping on
  127.0.0.1 with the machine's Docker engine; the forwarder with the contained one).
* containerd reads ``certs.d`` (written by the umbrella's node-trust DaemonSet).
* Offline (the node image built by homeci): the cluster's own images come from a read-only mount the
  node imports at boot, kubeadm is told the etcd and CoreDNS tags homeci builds, and kind's default CNI
  (kindnet, whose source the module proxy does not serve) is off: :mod:`homeci.cluster.kind.kindcluster`
  gives each node the real node's bridge network and the routes to the others' pod CIDRs.
* cgroup v1 hosts: kubelet is told ``failCgroupV1: false`` (Kubernetes >= 1.35 refuses v1 otherwise).
"""

from __future__ import annotations

from typing import Any

# Traefik's Service is a NodePort on these ports (the umbrella's traefik.service.nodePorts): pods of the
# namespace stay Pod Security "restricted" (host ports would need "privileged").
HTTPS_NODE_PORT = 30443
HTTP_NODE_PORT = 30080
IMAGES_IN_NODE = "/kind/images"
CERTS_D = "/etc/containerd/certs.d"


def config(name: str, *, nodes: int = 1, api_port: int | None = None, https_port: int | None = None,
           node_image: str | None = None, images_dir: str | None = None, cgroup_v1: bool = False,
           etcd_tag: str | None = None, coredns_tag: str | None = None) -> dict[str, Any]:
    """The kind Cluster config: one control-plane node and ``nodes - 1`` workers.

    ``https_port`` maps Traefik's node port to 127.0.0.1:<port> on the machine (its own Docker engine);
    ``node_image`` None keeps the node image the pinned kind release was published with; ``images_dir``
    (offline) is mounted read-only at :data:`IMAGES_IN_NODE` on every node."""
    if nodes < 1:
        raise ValueError("a kind cluster has at least one node")
    control: dict[str, Any] = {"role": "control-plane"}
    if https_port:
        control["extraPortMappings"] = [{"containerPort": HTTPS_NODE_PORT, "hostPort": https_port,
                                         "listenAddress": "127.0.0.1", "protocol": "TCP"}]
    members = [control, *({"role": "worker"} for _ in range(nodes - 1))]
    for node in members:
        if node_image:
            node["image"] = node_image
        if images_dir:
            node["extraMounts"] = [{"hostPath": images_dir, "containerPath": IMAGES_IN_NODE,
                                    "readOnly": True}]
    networking: dict[str, Any] = {"apiServerAddress": "127.0.0.1"}
    if api_port:
        networking["apiServerPort"] = api_port
    if images_dir:
        networking["disableDefaultCNI"] = True
    doc: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "networking": networking,
        "nodes": members,
        # Explicit although it is kind's default since 0.27: the node-trust DaemonSet writes here.
        "containerdConfigPatches": [
            f'[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "{CERTS_D}"\n'
        ],
    }
    patches = kubeadm_patches(cgroup_v1=cgroup_v1, etcd_tag=etcd_tag, coredns_tag=coredns_tag)
    if patches:
        doc["kubeadmConfigPatches"] = patches
    return doc


def kubeadm_patches(*, cgroup_v1: bool, etcd_tag: str | None, coredns_tag: str | None) -> list[str]:
    out = []
    if cgroup_v1:
        out.append("kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
                   "failCgroupV1: false\n")
    cluster = []
    if etcd_tag:
        cluster.append(f"etcd:\n  local:\n    imageTag: {etcd_tag}\n")
    if coredns_tag:
        cluster.append(f"dns:\n  imageTag: {coredns_tag}\n")
    if cluster:
        out.append("kind: ClusterConfiguration\n" + "".join(cluster))
    return out
