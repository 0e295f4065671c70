"""Configuration files and command lines of the real node's daemons (pure functions of the plan).

The settings marked "real-node" were each found by a failure on this kind of machine
(../shared/research/real-node.md): keep them unless the reason is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci.cluster.netns import layout as L
from homeci.cluster.netns.layout import Layout


@dataclass(frozen=True)
class Bins:
    """Resolved toolchain binaries by tool name."""

    paths: dict[str, Path]

    def __getitem__(self, name: str) -> str:
        return str(self.paths[name])


def containerd_toml(lay: Layout, *, runc: str, pause_image: str) -> str:
    """containerd config version 4 (2.4 migrates version 3 with a warning): everything under the
    state dir, CRI pinned to the local pause image."""
    return f"""version = 4
root = "{lay.containerd_root}"
state = "/run/containerd"
# real-node: opt would create /opt/containerd on the host; NRI would listen in /var/run/nri.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]
imports = []

[plugins.'io.containerd.server.v1.grpc']
  address = "{lay.containerd_socket}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    # hosts.toml per registry; the node-trust DaemonSet writes registry.<domain> here (inside the
    # holder's /etc overlay, so in the state dir).
    config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  # real-node: this VM has no CAP_SYS_RESOURCE, so negative oom_score_adj fails every sandbox.
  restrict_oom_score_adj = true
  # CoreDNS (uid 65534, no capabilities) binds :53.
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{lay.cni_bin}"]
    conf_dir = "{lay.cni_conf}"
"""


def cni_conflist(*, subnet: str, gateway: str, data_dir: str) -> str:
    """The pod network of one node: a ``cni0`` bridge (gateway, hairpin, no masquerade: nothing leaves)
    with ``host-local`` addresses from ``subnet``, plus ``portmap``. The kind provider's offline nodes use
    it too (one per node, on that node's pod CIDR)."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "homeci",
        "plugins": [
            {
                "type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "dataDir": data_dir,
                         "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                         "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def kubelet_config(lay: Layout, *, cgroup_root: str, cgroup_v1: bool) -> dict[str, Any]:
    pki = lay.pki
    cfg: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": L.NODE_IP,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "containerRuntimeEndpoint": f"unix://{lay.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": cgroup_root,
        "enforceNodeAllocatable": ["pods"],
        "clusterDNS": [L.DNS_SERVICE_IP],
        "clusterDomain": L.CLUSTER_DOMAIN,
        # real-node: a resolv.conf with no nameserver (pods get only cluster DNS).
        "resolvConf": str(lay.etc / "resolv.conf"),
        "failSwapOn": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
        "evictionPressureTransitionPeriod": "10s",
        "serializeImagePulls": False,
        "podPidsLimit": 4096,
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "staticPodPath": "",
        "shutdownGracePeriod": "0s",
        "registerNode": True,
        # A container's exit reaches the kubelet through containerd's CRI event stream at once instead of
        # at the next PLEG relist (every second). In 1.37 this alpha gate only asks the generic PLEG for
        # an early relist of that pod (PLEGOnDemandRelist, GA); the relist stays the one source of
        # status. Each hook Job and each pipeline step hand-off waited up to a second for it.
        "featureGates": {"EventedPLEG": True},
    }
    if cgroup_v1:
        cfg["failCgroupV1"] = False
    return cfg


def kube_proxy_config(lay: Layout) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(lay.etc / "kube-proxy.kubeconfig")},
        "hostnameOverride": lay.node_name,
        "bindAddress": L.NODE_IP,
        "clusterCIDR": L.POD_CIDR,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # real-node: 0 everywhere leaves the host-wide conntrack sysctls alone; no negative oom score.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "oomScoreAdj": 0,
    }


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def etcd_cmd(bins: Bins, lay: Layout) -> list[str]:
    return [bins["etcd"], "--name", "homeci", "--data-dir", str(lay.etcd_data),
            "--listen-client-urls", L.ETCD_CLIENT, "--advertise-client-urls", L.ETCD_CLIENT,
            "--listen-peer-urls", "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "homeci=http://127.0.0.1:2380",
            "--listen-metrics-urls", "http://127.0.0.1:2381",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn"]


def apiserver_cmd(bins: Bins, lay: Layout) -> list[str]:
    pki = lay.pki
    return [bins["kube-apiserver"],
            "--etcd-servers", L.ETCD_CLIENT,
            "--bind-address", L.NODE_IP, "--advertise-address", L.NODE_IP,
            "--secure-port", str(L.APISERVER_PORT),
            "--tls-cert-file", str(pki / "apiserver.crt"),
            "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--service-account-issuer", f"https://kubernetes.default.svc.{L.CLUSTER_DOMAIN}",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", L.SERVICE_CIDR,
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction",
            "--allow-privileged=true",
            "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
            "--kubelet-certificate-authority", str(pki / "ca.crt"),
            # real-node: exec/logs otherwise look the node name up in DNS.
            "--kubelet-preferred-address-types", "InternalIP",
            "--profiling=false", "--v", "1"]


def controller_manager_cmd(bins: Bins, lay: Layout) -> list[str]:
    pki, kc = lay.pki, str(lay.etc / "controller-manager.kubeconfig")
    return [bins["kube-controller-manager"], "--kubeconfig", kc,
            "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
            "--bind-address", "127.0.0.1",
            # One identity for every controller (its client certificate is in system:masters, see
            # NetnsCluster._write_pki_and_configs): with a ServiceAccount and token per controller, building
            # the ~45 controllers took 5 s of API round trips before any started (CoreDNS Ready 5 s
            # later). It gives nothing away: this process holds the cluster's signing key anyway.
            "--use-service-account-credentials=false",
            "--service-account-private-key-file", str(pki / "sa.key"),
            "--root-ca-file", str(pki / "ca.crt"),
            "--cluster-signing-cert-file", str(pki / "ca.crt"),
            "--cluster-signing-key-file", str(pki / "ca.key"),
            "--allocate-node-cidrs=true", "--cluster-cidr", L.POD_CIDR, "--node-cidr-mask-size", "24",
            "--service-cluster-ip-range", L.SERVICE_CIDR,
            "--leader-elect=false", "--profiling=false", "--v", "1"]


def scheduler_cmd(bins: Bins, lay: Layout) -> list[str]:
    kc = str(lay.etc / "scheduler.kubeconfig")
    return [bins["kube-scheduler"], "--kubeconfig", kc, "--authentication-kubeconfig", kc,
            "--authorization-kubeconfig", kc, "--bind-address", "127.0.0.1", "--leader-elect=false",
            "--profiling=false", "--v", "1"]


def kubelet_cmd(bins: Bins, lay: Layout) -> list[str]:
    return [bins["kubelet"], "--config", str(lay.etc / "kubelet.yaml"),
            "--kubeconfig", str(lay.etc / "kubelet.kubeconfig"),
            "--hostname-override", lay.node_name, "--node-ip", L.NODE_IP,
            "--root-dir", "/var/lib/kubelet", "--v", "1"]


def kube_proxy_cmd(bins: Bins, lay: Layout) -> list[str]:
    return [bins["kube-proxy"], "--config", str(lay.etc / "kube-proxy.yaml"), "--v", "1"]


def containerd_cmd(bins: Bins, lay: Layout) -> list[str]:
    return [bins["containerd"], "--config", str(lay.etc / "containerd.toml")]
