"""Where everything of one real node (provider ``netns``) lives, and its fixed network plan (inside its
own network namespace)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from homeci.paths import cache_dir

# The network exists only inside the cluster's network namespace, so fixed ranges never collide.
NODE_IP = "10.200.0.2"
NODE_PREFIX = 24
NODE_BRIDGE = "homeci0"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 6443
ETCD_CLIENT = "http://127.0.0.1:2379"


def root() -> Path:
    """Parent of every netns cluster's state directory (``$HOMECI_NETNS_WORKDIR`` overrides; the cache
    folder keeps its first name, ``local``, so clusters made before the rename are still found)."""
    env = os.environ.get("HOMECI_NETNS_WORKDIR") or os.environ.get("HOMECI_LOCAL_WORKDIR")
    return Path(env).expanduser() if env else cache_dir() / "local"


@dataclass(frozen=True)
class Layout:
    name: str
    state: Path

    @classmethod
    def of(cls, name: str, base: Path | None = None) -> Layout:
        return cls(name, (base or root()) / name)

    @property
    def node_name(self) -> str:
        return f"{self.name}-node"

    # files and directories ---------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def fs(self) -> Path:
        """Sources of the holder's /run, /var/lib, /var/log and the /etc overlay's upper dir."""
        return self.state / "fs"

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    @property
    def kept_images(self) -> Path:
        """containerd's root as a `homeci cluster down` left it, images only, for the next new node under
        the same parent (any name) to start with: one per parent directory, moved in and out by rename."""
        return self.state.parent / ".kept-images"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd.sock"

    @property
    def cni_bin(self) -> Path:
        return self.state / "cni" / "bin"

    @property
    def cni_conf(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_data(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def volumes(self) -> Path:
        """Directories of the pre-created local PersistentVolumes."""
        return self.state / "volumes"

    @property
    def kubeconfig(self) -> Path:
        """The host-side admin kubeconfig (API server through the forwarder on 127.0.0.1)."""
        return self.state / "kubeconfig.yaml"

    @property
    def info(self) -> Path:
        """cluster.json: the domain and the start-up time (the sandbox keeps ports and cgroups)."""
        return self.state / "cluster.json"
