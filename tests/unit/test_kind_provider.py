"""The kind provider's config, CoreDNS rule and commands (kind itself needs Docker: not run here).

The CoreDNS rule is checked with the real CoreDNS (toolchain tool ``coredns``, built with the
rewrite plugin) answering a real DNS query on 127.0.0.1."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from homeci import contract, toolchain
from homeci.cluster import kind
from homeci.errors import HomeciError
from homeci_testing.realprog import free_port

KIND_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


def test_config_maps_https_and_http_on_loopback_only() -> None:
    cfg = kind.config("homeci", http_port=8080, https_port=8443)
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cfg["nodes"]
    assert node["role"] == "control-plane"
    ports = {(m["containerPort"], m["hostPort"], m["listenAddress"]) for m in node["extraPortMappings"]}
    assert ports == {(80, 8080, "127.0.0.1"), (443, 8443, "127.0.0.1")}, "nodes[0].extraPortMappings"
    assert "image" not in node, "nodes[0].image: keep the node image pinned by the kind release"
    assert kind.config("x", node_image="kindest/node:v1.37.2")["nodes"][0]["image"] == "kindest/node:v1.37.2"


def test_containerd_patch_reads_certs_d() -> None:
    (patch,) = kind.config("homeci")["containerdConfigPatches"]
    parsed = tomllib.loads(patch)
    registry = parsed["plugins"]["io.containerd.cri.v1.images"]["registry"]
    assert registry["config_path"] == "/etc/containerd/certs.d", "containerdConfigPatches: config_path"


def test_the_kind_scenario_uses_host_ports() -> None:
    values = yaml.safe_load((Path(__file__).resolve().parents[2] / kind.KIND_VALUES).read_text())
    assert values["traefik"]["hostPorts"]["enabled"] is True, f"{kind.KIND_VALUES}: traefik.hostPorts.enabled"
    assert values["traefik"]["service"]["type"] == "ClusterIP", f"{kind.KIND_VALUES}: traefik.service.type"


def test_patch_corefile_inserts_once_inside_the_main_block() -> None:
    block = kind.coredns_rewrite("home.example", "homeci", "homeci")
    once = kind.patch_corefile(KIND_COREFILE, block)
    assert once.startswith(".:53 {\n    rewrite stop {"), once
    assert kind.patch_corefile(once, block) == once, "patch_corefile must be idempotent"
    with pytest.raises(HomeciError, match=r"\.:53"):
        kind.patch_corefile("example.org {\n}\n", block)


def test_commands_name_cluster_config_and_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMECI_CACHE", str(tmp_path))
    monkeypatch.setattr(kind.KindCluster, "kind", lambda self: Path("/opt/kind"))
    cluster = kind.KindCluster("t3")
    cfg = cluster.write_config(https_port=9443)
    assert yaml.safe_load(cfg.read_text())["name"] == "t3"
    assert cluster.create_command() == [
        "/opt/kind", "create", "cluster", "--name", "t3", "--config", str(cfg),
        "--kubeconfig", str(tmp_path / "kind" / "t3" / "kubeconfig"), "--wait", "180s"]
    assert cluster.delete_command()[:5] == ["/opt/kind", "delete", "cluster", "--name", "t3"]


def test_node_hosts_command_is_idempotent(tmp_path: Path) -> None:
    """The shell line the node runs, exercised on a copy of /etc/hosts (docker exec prefix removed)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    cmd = kind.node_hosts_command("homeci-control-plane", ["registry.home.example", "git.home.example"])
    assert cmd[:5] == ["docker", "exec", "homeci-control-plane", "sh", "-c"]
    script = cmd[5].replace("/etc/hosts", str(hosts)).replace("hostname -i", "echo 10.0.0.7")
    for _ in range(2):
        subprocess.run(["sh", "-c", script], check=True)
    assert hosts.read_text() == "127.0.0.1 localhost\n10.0.0.7 registry.home.example git.home.example\n"


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
    target = "homeci-traefik.homeci.svc.cluster.local"
    corefile = tmp_path / "Corefile"
    block = kind.coredns_rewrite("home.example", "homeci", "homeci")
    # The `hosts` plugin stands in for the kubernetes plugin's answer for the Traefik Service.
    patched = kind.patch_corefile(".:53 {\n    hosts {\n        10.96.0.44 " + target + "\n    }\n}\n", block)
    corefile.write_text(patched.replace(".:53 {", f".:{port} {{", 1))
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


def test_kind_rule_is_the_rule_the_chart_renders_for_k3s() -> None:
    """One DNS rule: the kind harness's Corefile block equals the chart's k3s coredns-custom block."""
    from homeci import manifests, rendering
    from homeci.paths import charts_dir

    chart = charts_dir() / "homeci-umbrella"
    objs = rendering.render(chart, [chart / "ci" / "k3s-coredns-values.yaml"], release="homeci",
                            namespace="homeci")
    cm = manifests.get(objs, "ConfigMap", "coredns-custom")
    values = yaml.safe_load((chart / "ci" / "k3s-coredns-values.yaml").read_text()) or {}
    domain = contract.domain(values)
    rendered = cm.obj["data"]["homeci.override"]
    assert rendered.split() == kind.coredns_rewrite(domain, "homeci", "homeci").split(), (
        "ConfigMap/coredns-custom data.homeci.override differs from homeci.cluster.kind.coredns_rewrite"
    )
