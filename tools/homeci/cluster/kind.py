"""The kind provider (T3 where a Docker engine runs): upstream images, real nodes in containers.

Everything the harness does is a plain command (``kind``, ``docker``) built by a function here, so the
config and the commands are tested on machines without Docker and run as is on machines with it.

* :func:`config` — a kind cluster whose control-plane node maps host ports (80/443 → Traefik's host
  ports, the umbrella's ``ci/kind-values.yaml``) on 127.0.0.1 and reads containerd ``certs.d`` (the
  default layout since kind 0.27, written by the umbrella's node-trust DaemonSet).
* :func:`coredns_rewrite` — the Corefile block that answers ``*.<domain>`` with the Traefik Service,
  the same rule the chart renders for k3s (``corednsCustom``).
* :func:`node_hosts_command` — the node's own resolver must know ``registry.<domain>`` for image
  pulls (containerd does not ask CoreDNS): an ``/etc/hosts`` line pointing at the node itself.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci import toolchain
from homeci.errors import HomeciError
from homeci.paths import cache_dir

KIND_VALUES = Path("charts/homeci-umbrella/ci/kind-values.yaml")


def docker_available() -> bool:
    """A Docker engine answers (a `docker` client alone is not enough: this machine has one)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def config(name: str, *, http_port: int = 80, https_port: int = 443,
           node_image: str | None = None) -> dict[str, Any]:
    """The kind Cluster config: one control-plane node, host ports on 127.0.0.1 only.

    ``node_image`` None keeps the node image the pinned kind release was published with (kind pins one
    per release, by digest); pass ``kindest/node:<version>@sha256:…`` to test another Kubernetes."""
    node: dict[str, Any] = {
        "role": "control-plane",
        "extraPortMappings": [
            {"containerPort": 80, "hostPort": http_port, "listenAddress": "127.0.0.1", "protocol": "TCP"},
            {"containerPort": 443, "hostPort": https_port, "listenAddress": "127.0.0.1", "protocol": "TCP"},
        ],
    }
    if node_image:
        node["image"] = node_image
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "nodes": [node],
        # Explicit although it is kind's default since 0.27: the node-trust DaemonSet writes here.
        "containerdConfigPatches": [
            '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d"\n'
        ],
    }


def coredns_rewrite(domain: str, release: str, namespace: str, cluster_domain: str = "cluster.local") -> str:
    """The Corefile block answering ``<anything>.<domain>`` with the Traefik Service's address."""
    target = f"{release}-traefik.{namespace}.svc.{cluster_domain.rstrip('.')}."
    pattern = "(.+\\.)?" + domain.replace(".", "\\.") + "\\.$"
    return f"rewrite stop {{\n  name regex {pattern} {target}\n  answer auto\n}}\n"


def patch_corefile(corefile: str, block: str) -> str:
    """Insert ``block`` into the ``.:53`` server block of a Corefile (idempotent)."""
    rule = next(line.strip() for line in block.splitlines() if line.strip().startswith("name regex"))
    if rule in corefile:
        return corefile
    marker = ".:53 {"
    at = corefile.find(marker)
    if at < 0:
        raise HomeciError("the cluster's CoreDNS Corefile has no `.:53 {` block to add the homeci rewrite to")
    indented = "".join(f"    {line}\n" for line in block.strip().splitlines())
    end = at + len(marker)
    return corefile[:end] + "\n" + indented + corefile[end:].lstrip("\n")


def node_hosts_command(node: str, hosts: list[str]) -> list[str]:
    """``docker exec`` that points ``hosts`` at the node's own address in its /etc/hosts (idempotent)."""
    names = " ".join(hosts)
    script = (f'ip=$(hostname -i | cut -d" " -f1); grep -qw "{hosts[0]}" /etc/hosts '
              f'|| echo "$ip {names}" >> /etc/hosts')
    return ["docker", "exec", node, "sh", "-c", script]


@dataclass
class KindCluster:
    name: str

    @property
    def state(self) -> Path:
        return cache_dir() / "kind" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def config_file(self) -> Path:
        return self.state / "kind-config.yaml"

    def kind(self) -> Path:
        return toolchain.resolve("kind", build=True)

    def create_command(self) -> list[str]:
        return [str(self.kind()), "create", "cluster", "--name", self.name, "--config", str(self.config_file),
                "--kubeconfig", str(self.kubeconfig), "--wait", "180s"]

    def delete_command(self) -> list[str]:
        return [str(self.kind()), "delete", "cluster", "--name", self.name,
                "--kubeconfig", str(self.kubeconfig)]

    def write_config(self, *, http_port: int = 80, https_port: int = 443) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(config(self.name, http_port=http_port, https_port=https_port), sort_keys=False)
        self.config_file.write_text(text)
        return self.config_file

    def up(self) -> None:
        if not docker_available():
            raise HomeciError("kind needs a Docker engine, and none answers `docker info` here: "
                              "use `homeci cluster local up` (Linux, root) or start Docker")
        self.write_config()
        _run(self.create_command(), "kind create cluster")

    def down(self) -> None:
        if not docker_available():
            raise HomeciError(f"kind cluster {self.name}: no Docker engine answers, so it cannot be deleted "
                              f"now: start Docker and run `homeci cluster down --name {self.name}` again")
        _run(self.delete_command(), "kind delete cluster")

    def configure_dns(self, api: Any, *, domain: str, release: str, namespace: str) -> None:
        """CoreDNS answers *.<domain> with Traefik; the node resolves the public names to itself."""
        from kubernetes import client

        core = client.CoreV1Api(api)
        cm = core.read_namespaced_config_map("coredns", "kube-system")
        patched = patch_corefile(cm.data["Corefile"], coredns_rewrite(domain, release, namespace))
        if patched != cm.data["Corefile"]:
            core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": patched}})
        hosts = [f"{label}.{domain}" for label in ("registry", "git", "ci")]
        _run(node_hosts_command(f"{self.name}-control-plane", hosts), "docker exec (node /etc/hosts)")


def _run(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except OSError as exc:
        raise HomeciError(f"{what}: cannot run {cmd[0]} ({exc.strerror})") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise HomeciError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc.stdout
