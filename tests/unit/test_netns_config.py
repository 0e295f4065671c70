"""The real node's generated configuration (provider netns; pure functions; no root, no cluster)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from homeci.cluster import addons
from homeci.cluster.netns import daemons as cfg
from homeci.cluster.netns import layout as L
from homeci.cluster.netns.layout import Layout


def _layout(tmp_path: Path) -> Layout:
    return Layout.of("unit", tmp_path)


def test_containerd_config_keeps_everything_local(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    doc = tomllib.loads(cfg.containerd_toml(lay, runc="/x/runc", pause_image="registry.k8s.io/pause:3.10.2"))
    assert doc["version"] == 4
    assert doc["root"].startswith(str(tmp_path))
    assert doc["imports"] == []
    assert "io.containerd.internal.v1.opt" in doc["disabled_plugins"]  # would create /opt/containerd
    plugins = doc["plugins"]
    assert plugins["io.containerd.server.v1.grpc"]["address"] == str(lay.containerd_socket)
    images = plugins["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10.2"
    assert images["registry"]["config_path"] == "/etc/containerd/certs.d"
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["cni"]["bin_dirs"] == [str(lay.cni_bin)]
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {"BinaryName": "/x/runc", "SystemdCgroup": False}


def test_kubelet_config_cgroup_v1_and_v2(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    v1 = cfg.kubelet_config(lay, cgroup_root="/a/homeci-unit", cgroup_v1=True)
    v2 = cfg.kubelet_config(lay, cgroup_root="/a/homeci-unit", cgroup_v1=False)
    assert v1["failCgroupV1"] is False and "failCgroupV1" not in v2
    for c in (v1, v2):
        assert c["cgroupDriver"] == "cgroupfs" and c["cgroupRoot"] == "/a/homeci-unit"
        assert c["readOnlyPort"] == 0 and c["authentication"]["anonymous"]["enabled"] is False
        assert c["clusterDNS"] == [L.DNS_SERVICE_IP]


def test_kube_proxy_leaves_host_conntrack_alone(tmp_path: Path) -> None:
    conf = cfg.kube_proxy_config(_layout(tmp_path))
    assert conf["mode"] == "iptables" and conf["oomScoreAdj"] == 0
    assert conf["conntrack"]["maxPerCore"] == 0 and conf["conntrack"]["min"] == 0


def test_cni_uses_the_state_dir(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    conf = json.loads(cfg.cni_conflist(subnet=L.NODE_POD_CIDR, gateway=L.POD_GATEWAY,
                                       data_dir=str(lay.cni_data)))
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["dataDir"] == str(lay.cni_data) and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": L.NODE_POD_CIDR, "gateway": L.POD_GATEWAY}]]


def test_corefile_rewrites_the_domain_and_its_subdomains_only() -> None:
    text = addons.corefile(domain="homeci.test", traefik_service="homeci-traefik.homeci.svc.cluster.local")
    pattern = re.search(r"name regex (\S+) (\S+)", text)
    assert pattern is not None and pattern.group(2) == "homeci-traefik.homeci.svc.cluster.local."
    regex = re.compile(pattern.group(1))
    for name in ("git.homeci.test.", "registry.homeci.test.", "a.b.homeci.test.", "homeci.test."):
        assert regex.match(name), name
    for name in ("homeci.testing.", "nothomeci.test.", "example.com."):
        assert not regex.match(name), name
    assert "forward" not in text  # nothing leaves the cluster
    online = addons.corefile(domain="homeci.test", traefik_service="t.svc", upstream=True)
    assert "forward . /etc/resolv.conf" in online, "with upstream, other names go to the node's resolver"


def test_storage_pool_is_local_wait_for_first_consumer(tmp_path: Path) -> None:
    objs = addons.storage_objects(pool="unit", volumes={"unit-node": str(tmp_path)})
    sc = objs[0]
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    pvs = objs[1:]
    assert len(pvs) == addons.VOLUME_POOL
    assert all("local" in pv["spec"] and "hostPath" not in pv["spec"] for pv in pvs)


def test_storage_pool_spans_every_node() -> None:
    objs = addons.storage_objects(pool="two", volumes={"two-control-plane": "/v", "two-worker": "/v"})
    pvs = objs[1:]
    assert len(pvs) == 2 * addons.VOLUME_POOL
    terms = [pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0] for pv in pvs]
    nodes = {t["matchExpressions"][0]["values"][0] for t in terms}
    assert nodes == {"two-control-plane", "two-worker"}
    assert len({pv["metadata"]["name"] for pv in pvs}) == len(pvs), "PersistentVolume names must be unique"
