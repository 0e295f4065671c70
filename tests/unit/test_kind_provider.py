"""The kind provider's configuration, its offline node image's files and the DNS rule every real provider
gives CoreDNS (kind itself runs in tests/integration and tests/providers with ``--provider kind``).

The DNS rule is checked with the real CoreDNS (toolchain tool ``coredns``, built with the rewrite
plugin) answering a real DNS query on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from homeci import contract, images, toolchain
from homeci.cluster import addons
from homeci.cluster.kind import kindconfig
from homeci.cluster.kind.runtime_wrapper import _edit, _value
from homeci.errors import HomeciError
from homeci.images import recipes
from homeci_testing.realprog import free_port


def test_config_maps_https_on_loopback_only_for_the_machines_engine() -> None:
    cfg = kindconfig.config("homeci", api_port=16543, https_port=8543)
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cfg["nodes"]
    assert node["role"] == "control-plane"
    ports = {(m["containerPort"], m["hostPort"], m["listenAddress"]) for m in node["extraPortMappings"]}
    assert ports == {(kindconfig.HTTPS_NODE_PORT, 8543, "127.0.0.1")}, "nodes[0].extraPortMappings"
    assert cfg["networking"] == {"apiServerAddress": "127.0.0.1", "apiServerPort": 16543}, "networking"
    assert "image" not in node, "nodes[0].image: keep the node image pinned by the kind release"


def test_offline_config_mounts_the_images_and_turns_kindnet_off() -> None:
    cfg = kindconfig.config("t", nodes=2, api_port=16543, node_image=images.KIND_NODE_IMAGE,
                            images_dir="/cache/node-images", cgroup_v1=True, etcd_tag="3.7.3-0",
                            coredns_tag="v1.14.7")
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker"], "nodes[].role"
    for i, node in enumerate(cfg["nodes"]):
        assert node["image"] == images.KIND_NODE_IMAGE, f"nodes[{i}].image"
        assert node["extraMounts"] == [{"hostPath": "/cache/node-images", "containerPath": "/kind/images",
                                        "readOnly": True}], f"nodes[{i}].extraMounts"
        assert "extraPortMappings" not in node, f"nodes[{i}]: the contained engine's forwarder relays"
    assert cfg["networking"]["disableDefaultCNI"] is True, "networking.disableDefaultCNI"
    patches = [yaml.safe_load(p) for p in cfg["kubeadmConfigPatches"]]
    kubelet = next(p for p in patches if p["kind"] == "KubeletConfiguration")
    assert kubelet["failCgroupV1"] is False, "KubeletConfiguration.failCgroupV1"
    cluster = next(p for p in patches if p["kind"] == "ClusterConfiguration")
    assert cluster["etcd"]["local"]["imageTag"] == "3.7.3-0" and cluster["dns"]["imageTag"] == "v1.14.7"


def test_kubeadm_is_told_the_tags_homeci_builds() -> None:
    assert images.ETCD_IMAGE.rsplit(":", 1)[1] == toolchain.tool("etcd").version.lstrip("v") + "-0"
    assert images.COREDNS_IMAGE.rsplit(":", 1)[1] == toolchain.tool("coredns").version
    for ref in images.KUBE_IMAGES:
        assert ref.endswith(":" + toolchain.tool("kubeadm").version), ref
    assert toolchain.tool("kubelet").version == recipes.KUBE_VERSION


def test_containerd_patch_reads_certs_d() -> None:
    (patch,) = kindconfig.config("homeci")["containerdConfigPatches"]
    parsed = tomllib.loads(patch)
    registry = parsed["plugins"]["io.containerd.cri.v1.images"]["registry"]
    assert registry["config_path"] == "/etc/containerd/certs.d", "containerdConfigPatches: config_path"


def test_node_image_containerd_config() -> None:
    text = (recipes.KIND_NODE_FILES / "containerd.toml").read_text().replace("@PAUSE_IMAGE@", "p:1")
    doc = tomllib.loads(text)
    assert doc["version"] == 3
    images_plugin = doc["plugins"]["io.containerd.cri.v1.images"]
    # kind's `load image-archive` reads the snapshotter here (config versions 3 and 4)
    assert images_plugin["snapshotter"] == "overlayfs"
    assert images_plugin["pinned_images"]["sandbox"] == "p:1"
    runtime = doc["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True, "no CAP_SYS_RESOURCE on this kind of VM"
    options = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert options == {"BinaryName": "/usr/local/sbin/runc", "SystemdCgroup": True}


def test_node_image_entrypoint_prints_what_kind_waits_for() -> None:
    text = (recipes.KIND_NODE_FILES / "entrypoint").read_text()
    # kind waits (30 s) for "Reached target .*Multi-User System.*|detected cgroup v1" in the node's log
    assert 'info "detected cgroup v1"' in text
    assert 'exec "$@"' in text.splitlines()[-1]
    proc = subprocess.run(["bash", "-n", str(recipes.KIND_NODE_FILES / "entrypoint")], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"entrypoint: {proc.stderr}"


def test_runtime_wrapper_drops_only_cap_sys_resource(tmp_path: Path) -> None:
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    bundle = {"process": {"capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")}}}
    (tmp_path / "config.json").write_text(json.dumps(bundle))
    argv = ["--root", "/run/x", "create", "--bundle", str(tmp_path), "--pid-file", "p", "id1"]
    assert _value(argv, "--bundle", "-b") == str(tmp_path)
    assert _value(["exec", "--process=/tmp/p.json"], "--process", "-p") == "/tmp/p.json"
    _edit(tmp_path / "config.json", bundle=True)
    edited = json.loads((tmp_path / "config.json").read_text())
    for kind, names in edited["process"]["capabilities"].items():
        assert names == ["CAP_CHOWN", "CAP_SYS_ADMIN"], f"process.capabilities.{kind}"


def _dns_query(port: int, name: str) -> tuple[int, list[str]]:
    """(rcode, A records) for ``name`` from a DNS server on 127.0.0.1:port (a minimal stdlib client)."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(packet, ("127.0.0.1", port))
        data, _ = sock.recvfrom(4096)
    rcode = data[3] & 0x0F
    answers = struct.unpack(">H", data[6:8])[0]
    pos = 12 + len(qname) + 4
    found = []
    for _ in range(answers):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else len(data[pos:].split(b"\0", 1)[0]) + 1
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1:
            found.append(socket.inet_ntoa(data[pos:pos + rdlen]))
        pos += rdlen
    return rcode, found


@pytest.mark.realprog
def test_rewrite_rule_answers_public_names_with_traefik_in_real_coredns(tmp_path: Path) -> None:
    try:
        coredns = toolchain.resolve("coredns")
    except HomeciError as exc:
        pytest.skip(f"real CoreDNS not built: {exc}")
    port = free_port()
    target = addons.traefik_service("homeci", "homeci")
    rule = addons.rewrite_rule("home.example", target)
    # The `hosts` plugin stands in for the kubernetes plugin's answer for the Traefik Service.
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:{port} {{\n{rule}    hosts {{\n        10.96.0.44 {target}\n    }}\n}}\n")
    proc = subprocess.Popen([str(coredns), "-conf", str(corefile), "-dns.port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        answer: tuple[int, list[str]] = (-1, [])
        for _ in range(50):
            try:
                answer = _dns_query(port, "registry.home.example")
                break
            except OSError:
                time.sleep(0.1)
        assert answer == (0, ["10.96.0.44"]), f"registry.home.example via the rewrite: {answer}"
        assert _dns_query(port, "sample-app.home.example") == (0, ["10.96.0.44"]), "apps under the domain"
        rcode, found = _dns_query(port, "home.example.org")
        assert not found, f"home.example.org must not be rewritten (rcode {rcode}, answers {found})"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_providers_rule_is_the_rule_the_chart_renders_for_k3s() -> None:
    """One DNS rule: the real providers' Corefile block equals the chart's k3s coredns-custom block."""
    from homeci import manifests, rendering
    from homeci.paths import charts_dir

    chart = charts_dir() / "homeci-umbrella"
    objs = rendering.render(chart, [chart / "ci" / "k3s-coredns-values.yaml"], release="homeci",
                            namespace="homeci")
    cm = manifests.get(objs, "ConfigMap", "coredns-custom")
    values = yaml.safe_load((chart / "ci" / "k3s-coredns-values.yaml").read_text()) or {}
    domain = contract.domain(values)
    rendered = cm.obj["data"]["homeci.override"]
    ours = addons.rewrite_rule(domain, addons.traefik_service("homeci", "homeci"))
    assert rendered.split() == ours.split(), (
        "ConfigMap/coredns-custom data.homeci.override differs from homeci.cluster.addons.rewrite_rule")


def test_nodes_start_lowest_kept_address_first() -> None:
    """Docker hands a starting container the lowest free address: started in that order, every node of a
    stopped kind cluster gets its own address back (the control plane's certificates name it)."""
    from homeci.cluster.kind.kindcluster import start_order

    nodes = ["k-control-plane", "k-worker", "k-worker2"]
    kept = {"k-control-plane": "172.17.0.10", "k-worker": "172.17.0.9", "k-worker2": "172.17.0.2"}
    assert start_order(nodes, kept) == ["k-worker2", "k-worker", "k-control-plane"], (
        "addresses must sort as numbers (172.17.0.10 after .9), lowest first")
    assert start_order(nodes, {"k-worker": "172.17.0.2"}) == ["k-worker", "k-control-plane", "k-worker2"], (
        "nodes without a kept address come last, in their own order")
    assert start_order(nodes, {}) == nodes
