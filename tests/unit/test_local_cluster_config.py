"""The local real cluster's generated configuration (pure functions; no root, no cluster)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from homeci.cluster.local import addons
from homeci.cluster.local import config as cfg
from homeci.cluster.local import layout as L
from homeci.cluster.local.layout import Layout
from homeci_testing.support import run_cli


def _layout(tmp_path: Path) -> Layout:
    return Layout.of("unit", tmp_path)


def test_containerd_config_keeps_everything_local(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    doc = tomllib.loads(cfg.containerd_toml(lay, runc="/x/runc", pause_image="registry.k8s.io/pause:3.10.1"))
    assert doc["version"] == 4
    assert doc["root"].startswith(str(tmp_path))
    assert doc["imports"] == []
    assert "io.containerd.internal.v1.opt" in doc["disabled_plugins"]  # would create /opt/containerd
    plugins = doc["plugins"]
    assert plugins["io.containerd.server.v1.grpc"]["address"] == str(lay.containerd_socket)
    images = plugins["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10.1"
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
    conf = json.loads(cfg.cni_conflist(lay))
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["dataDir"] == str(lay.cni_data) and bridge["ipMasq"] is False


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


def test_storage_pool_is_local_wait_for_first_consumer(tmp_path: Path) -> None:
    objs = addons.storage_objects(node="unit-node", volumes=tmp_path, cluster="unit")
    sc = objs[0]
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    pvs = objs[1:]
    assert len(pvs) == addons.VOLUME_POOL
    assert all("local" in pv["spec"] and "hostPath" not in pv["spec"] for pv in pvs)


def test_cli_lists_the_local_commands() -> None:
    result = run_cli("cluster", "local", "--help")
    assert result.exit_code == 0
    for cmd in ("up", "down", "status", "kubeconfig", "images", "install"):
        assert cmd in result.stdout
    images = run_cli("cluster", "local", "images", "--help")
    assert all(c in images.stdout for c in ("build", "list", "load"))
