"""Provider ``kind``: Kubernetes nodes in containers, made by kind v0.33.0 from the toolchain.

Two ways, chosen when the cluster is made and kept with it (``cluster.json``):

* **the machine's Docker engine** (a laptop): kind's published node image, the nodes pull the chart's
  upstream images, kindnet and kind's storage; Traefik's node port is mapped to 127.0.0.1:<port>.
* **offline** (CI, this kind of host; the default where no Docker engine answers, ``--offline``
  elsewhere): the engine is homeci's contained one (:mod:`homeci.cluster.kind.engine`) unless the machine
  has its own, the node image is built by homeci from the toolchain pins the real node uses
  (:data:`homeci.images.KIND_NODE_IMAGE`) and ``docker load``-ed, kubeadm's images come from the same
  OCI archives (mounted into every node, imported at boot), the chart's images are loaded with
  ``kind load image-archive``, each node gets the real node's bridge network on its pod CIDR plus routes
  to the other nodes', and storage is a pool of local volumes on each node (:mod:`homeci.cluster.addons`).

Either way CoreDNS answers ``*.<domain>`` with Traefik, every node resolves the public names to Traefik's
ClusterIP (containerd pulls from ``registry.<domain>``), and the host reaches them on one loopback port.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import contract, kubeaccess, toolchain
from homeci.cluster import addons
from homeci.cluster.kind import engine as engines
from homeci.cluster.kind import kindconfig
from homeci.cluster.provider import REAL_DOMAIN, ClusterBase, Progress, Record, free_port
from homeci.errors import HomeciError
from homeci.paths import cache_dir

API_PORT = 16543
HTTPS_PORT = 8543
VOLUMES_IN_NODE = "/var/local/homeci-volumes"
CNI_CONFIG = "/etc/cni/net.d/10-homeci.conflist"
HOSTS_MARK = "# homeci public names"


def clusters_dir() -> Path:
    return cache_dir() / "kind" / "clusters"


@dataclass
class Prepared:
    kind: Path
    node_archive: Path | None = None
    node_images: dict[str, Path] = field(default_factory=dict)


class KindCluster(ClusterBase):
    provider = "kind"

    def __init__(self, name: str, *, nodes: int = 1, offline: bool | None = None,
                 domain: str | None = None) -> None:
        super().__init__(name, max_length=30)
        self.state = clusters_dir() / name
        info = self.info()
        # A cluster keeps how it was made; a new one: offline unless the machine's Docker engine answers.
        self.contained = bool(info["contained"]) if "contained" in info else not engines.host_docker_answers()
        wanted = self.contained if offline is None else offline or self.contained
        self.offline = bool(info.get("offline", wanted))
        self.nodes = int(info.get("nodes", nodes))
        self._domain = str(info.get("domain") or domain or REAL_DOMAIN)
        self.engine = engines.Engine(name, self.state / "engine")

    # -- where things are -------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.state

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def config_file(self) -> Path:
        return self.state / "kind-config.yaml"

    @property
    def record(self) -> Record:
        return Record(self.state / "cluster.json")

    def info(self) -> dict[str, Any]:
        return self.record.read()

    @property
    def _facts(self) -> Record:
        return self.record

    def _save_info(self, **changes: Any) -> None:
        self.record.update(**changes)

    def exists(self) -> bool:
        return self.record.exists()

    def domain(self) -> str:
        return self._domain

    @property
    def image_source(self) -> str:
        return "source" if self.offline else "upstream"

    def server(self) -> str | None:
        port = self.info().get("ports", {}).get("api")
        return f"https://127.0.0.1:{port}" if port else None

    def https_port(self) -> int | None:
        port = self.info().get("ports", {}).get("https")
        return int(port) if port else None

    def describe(self) -> str:
        how = ("offline, homeci's contained Docker engine" if self.contained else
               "offline, this machine's Docker engine" if self.offline else "this machine's Docker engine")
        return f"kind cluster {self.name!r} ({how})"

    # -- docker and kind --------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return self.engine.docker_env() if self.contained else dict(os.environ)

    def _run(self, cmd: list[str], what: str, *, timeout: float = 900, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=timeout,
                                  input=stdin, check=False)
        except OSError as exc:
            raise HomeciError(f"{what}: cannot run {cmd[0]} ({exc.strerror})") from None
        if check and proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
            raise HomeciError(f"{what} failed (exit {proc.returncode}): {tail}")
        return proc

    def _kind(self, *args: str, what: str, timeout: float = 900) -> str:
        kind = toolchain.resolve("kind")
        return self._run([str(kind), *args], what, timeout=timeout).stdout

    def node_names(self) -> list[str]:
        proc = self._run(["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={self.name}",
                          "--format", "{{.Names}} {{.State}}"], "docker ps", check=False, timeout=30)
        return sorted(line.split()[0] for line in proc.stdout.splitlines() if line.strip())

    def _node_states(self) -> dict[str, bool]:
        proc = self._run(["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={self.name}",
                          "--format", "{{.Names}} {{.State}}"], "docker ps", check=False, timeout=30)
        return {parts[0]: parts[1] == "running" for parts in (ln.split() for ln in proc.stdout.splitlines())
                if len(parts) == 2}

    def exec(self, node: str, script: str, *, stdin: str | None = None, timeout: float = 300) -> str:
        """``sh -c script`` in a node container."""
        flags = ["-i"] if stdin is not None else []
        return self._run(["docker", "exec", *flags, node, "sh", "-c", script], f"docker exec {node}",
                         stdin=stdin, timeout=timeout).stdout

    def processes(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        if self.contained:
            live = self.engine.sandbox.pids()
            out.update({n: n in live for n in ("holder", "forwarder", "containerd", "dockerd")})
            if not (out["dockerd"] and self.engine.socket.exists()):
                return out
        out.update(self._node_states())
        return out

    def healthy(self) -> bool:
        if self.contained and not self.engine.running():
            return False
        return self.api_answers()

    # -- up ----------------------------------------------------------------------------------------

    def _offline_images(self) -> list[str]:
        """The node image and kubeadm's images, built from source for an offline cluster."""
        from homeci import images

        return [images.KIND_NODE_IMAGE, images.PAUSE_IMAGE, images.COREDNS_IMAGE, images.ETCD_IMAGE,
                *images.KUBE_IMAGES]

    def build_needs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("kind",), tuple(self._offline_images()) if self.offline else ()

    def _prepare(self, *, build: bool, progress: Progress | None) -> Prepared:
        kind = toolchain.resolve("kind", build=build, progress=progress)
        prepared = Prepared(kind)
        if self.contained:
            engines.ensure(progress)
        if self.offline:
            from homeci import images

            wanted = self._offline_images()
            if not build:
                missing = [r for r in wanted if not images.is_cached(r)]
                if missing:
                    raise HomeciError(f"image {missing[0]} is not built: run `homeci cluster images build "
                                      f"{' '.join(missing)}`")
            started = time.monotonic()
            archives = images.build(wanted, progress)
            if progress:
                progress(f"node image and kubeadm's images ready in {time.monotonic() - started:.0f}s")
            prepared.node_archive = archives.pop(images.normalize(images.KIND_NODE_IMAGE))
            prepared.node_images = archives
        return prepared

    def _create(self, prepared: Prepared, *, timeout: float, progress: Progress | None) -> None:
        say = progress or (lambda _m: None)
        if self.state.exists():
            shutil.rmtree(self.state)
        self._save_info(contained=self.contained, offline=self.offline, nodes=self.nodes, domain=self._domain)
        if self.contained:
            ports = self.engine.start(ports={"api": (API_PORT,), "https": (HTTPS_PORT,)},
                                      targets={"api": f"127.0.0.1:{API_PORT}"}, progress=progress)
            # the API server listens inside the namespace on the port the host side got
            self.engine.sandbox.forward(api=f"127.0.0.1:{ports['api']}")
        else:
            ports = {"api": free_port(API_PORT), "https": free_port(HTTPS_PORT)}
        self._save_info(ports=ports)
        from homeci import images

        node_image, images_dir = None, None
        if prepared.node_archive is not None:
            say(f"docker load {images.KIND_NODE_IMAGE} ({prepared.node_archive.stat().st_size / 1e6:.0f} MB)")
            self._run(["docker", "load", "-i", str(prepared.node_archive)], "docker load (the node image)")
            node_image = images.KIND_NODE_IMAGE
            images_dir = self._stage_node_images(prepared.node_images)
        doc = kindconfig.config(
            self.name, nodes=self.nodes, api_port=ports["api"],
            https_port=None if self.contained else ports["https"], node_image=node_image,
            images_dir=str(images_dir) if images_dir else None, cgroup_v1=_cgroup_v1(),
            etcd_tag=_tag(images.ETCD_IMAGE) if self.offline else None,
            coredns_tag=_tag(images.COREDNS_IMAGE) if self.offline else None)
        self.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        say(f"kind create cluster --name {self.name} ({self.nodes} node{'s' if self.nodes > 1 else ''})")
        started = time.monotonic()
        self._kind("create", "cluster", "--name", self.name, "--config", str(self.config_file),
                   "--kubeconfig", str(self.kubeconfig), "--wait", "0s", what="kind create cluster",
                   timeout=timeout + 300)
        self._save_info(created_seconds=round(time.monotonic() - started, 1))
        if self.contained:
            self.engine.sandbox.forward(https=f"{self._node_ip(f'{self.name}-control-plane')}:"
                                              f"{kindconfig.HTTPS_NODE_PORT}")
        if self.offline:
            self._node_network(timeout=timeout, progress=say)
        if self.nodes > 1:
            self._schedule_on_control_plane()
        self._coredns(progress=say)
        if self.offline:
            self._storage()

    def _stage_node_images(self, archives: dict[str, Path]) -> Path:
        """The archives kubeadm's images come from, in one folder mounted into every node (hard links)."""
        folder = self.state / "node-images"
        folder.mkdir(parents=True, exist_ok=True)
        for ref, archive in archives.items():
            dest = folder / (ref.replace("/", "_").replace(":", "_") + ".tar")
            try:
                os.link(archive, dest)
            except OSError:
                shutil.copyfile(archive, dest)
        return folder

    def _node_ip(self, node: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        out = self._run(["docker", "inspect", "-f", template, node], f"docker inspect {node}").stdout.split()
        if not out:
            raise HomeciError(f"kind node {node} has no IP address on the kind network")
        return out[0]

    def _node_network(self, *, timeout: float, progress: Progress) -> None:
        """Each node: the bridge network on its pod CIDR (the real node's CNI configuration) and a route to
        every other node's pod CIDR through that node (what kindnet does, here from the outside)."""
        from kubernetes import client

        from homeci.cluster.netns.daemons import cni_conflist

        core = client.CoreV1Api(self.api())
        plan: dict[str, tuple[str, str]] = {}

        def cidrs() -> str | None:
            items = core.list_node().items
            plan.clear()
            for n in items:
                ip = next((a.address for a in n.status.addresses or [] if a.type == "InternalIP"), None)
                if n.spec.pod_cidr and ip:
                    plan[n.metadata.name] = (n.spec.pod_cidr, ip)
            waiting = self.nodes - len(plan)
            return f"{waiting} node(s) without a pod CIDR yet" if waiting else None

        kubeaccess.wait_for("the nodes' pod CIDRs", cidrs, timeout=timeout, progress=progress)
        for node, (cidr, _) in plan.items():
            gateway = str(next(ipaddress.ip_network(cidr).hosts()))
            conf = cni_conflist(subnet=cidr, gateway=gateway, data_dir="/var/lib/cni/networks")
            routes = "".join(f"ip route replace {c} via {ip}\n" for n, (c, ip) in plan.items() if n != node)
            script = f"cat > {CNI_CONFIG}.tmp && mv {CNI_CONFIG}.tmp {CNI_CONFIG}\n{routes}"
            self.exec(node, script, stdin=conf)
        progress(f"pod network: {', '.join(f'{n} {c}' for n, (c, _) in sorted(plan.items()))}")

    def _schedule_on_control_plane(self) -> None:
        """Every node takes pods: kind leaves kubeadm's NoSchedule taint on the control plane of a
        multi-node cluster, which would leave one node for the stack and its builds."""
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        taint = "node-role.kubernetes.io/control-plane"
        for node in core.list_node(label_selector=taint).items:
            taints = node.spec.taints or []
            if any(t.key == taint for t in taints):
                kept = [client.ApiClient().sanitize_for_serialization(t) for t in taints if t.key != taint]
                core.patch_node(node.metadata.name, {"spec": {"taints": kept}})

    def _coredns(self, *, progress: Progress) -> None:
        """CoreDNS answers ``*.<domain>`` with Traefik (the Corefile the real node uses; upstream names
        are forwarded only where the nodes have a resolver that reaches them)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        traefik = addons.traefik_service(contract.RELEASE, contract.NAMESPACE)
        corefile = addons.corefile(domain=self._domain, traefik_service=traefik, upstream=not self.offline)
        kubeaccess.wait_for("the CoreDNS ConfigMap",
                            lambda: None if core.read_namespaced_config_map(addons.COREDNS, "kube-system")
                            else "missing", timeout=120, progress=progress)
        core.patch_namespaced_config_map(addons.COREDNS, "kube-system", {"data": {"Corefile": corefile}})
        # restart now instead of waiting for the reload plugin (offline, kubeadm's Corefile names plugins
        # homeci's CoreDNS does not have, so its pods crash until they read this one)
        core.delete_collection_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")

    def _storage(self) -> None:
        volumes = {node: VOLUMES_IN_NODE for node in self.node_names()}
        for node in volumes:
            dirs = " ".join(addons.volume_dir(VOLUMES_IN_NODE, i) for i in range(addons.VOLUME_POOL))
            self.exec(node, f"mkdir -p {dirs}")
        addons.apply_storage(self.api(), pool=self.name, volumes=volumes)

    def _wait_ready(self, *, timeout: float, progress: Progress | None) -> None:
        super()._wait_ready(timeout=timeout, progress=progress)
        from kubernetes import client

        apps = client.AppsV1Api(self.api())

        def dns() -> str | None:
            d = apps.read_namespaced_deployment(addons.COREDNS, "kube-system")
            ready = d.status.ready_replicas or 0
            return None if ready >= 1 else f"{ready}/{d.spec.replicas} CoreDNS pods ready"

        kubeaccess.wait_for("CoreDNS", dns, timeout=timeout, progress=progress)

    # -- images and names --------------------------------------------------------------------------

    def load_images(self, refs: list[str], progress: Progress | None = None) -> list[str]:
        """Offline: build ``refs`` from source and ``kind load image-archive`` each into every node.
        With upstream images the nodes pull them: nothing to load."""
        if not self.offline:
            return []
        from homeci import images

        archives = images.build(refs, progress)
        for archive in sorted(set(archives.values())):
            if progress:
                progress(f"kind load image-archive {archive.name}")
            self._kind("load", "image-archive", str(archive), "--name", self.name,
                       what="kind load image-archive")
        loaded = self.images()
        absent = [images.normalize(r) for r in refs if images.normalize(r) not in loaded]
        if absent:
            raise HomeciError(f"image {absent[0]} is not on every node after kind load: run `homeci cluster "
                              f"images load --provider kind {absent[0]}` and check its archive")
        return sorted(loaded)

    def images(self) -> list[str]:
        """The images every node holds (containerd's k8s.io namespace)."""
        listing = "ctr --namespace k8s.io images list -q"
        per_node = [set(self.exec(n, listing).split()) for n in self.node_names()]
        return sorted(set.intersection(*per_node)) if per_node else []

    def publish(self, *, release: str, namespace: str, progress: Progress | None = None) -> None:
        """Every node resolves the public names to Traefik's ClusterIP (containerd pulls from
        ``registry.<domain>``); Released local volumes are emptied for the next claim."""
        from homeci.cluster.install import traefik_ip

        api = self.api()
        ip = traefik_ip(api, release, namespace)
        if ip is None:
            return
        names = " ".join(contract.hosts({"global": {"domain": self._domain}}).values())
        line = f"{ip} {names} {HOSTS_MARK}"
        for node in self.node_names():
            # /etc/hosts is a file Docker bind-mounts: rewrite it in place
            self.exec(node, f"grep -v '{HOSTS_MARK}' /etc/hosts > /tmp/hosts.homeci; echo '{line}' >> "
                            "/tmp/hosts.homeci; cat /tmp/hosts.homeci > /etc/hosts; rm /tmp/hosts.homeci")
        if progress:
            progress(f"public names -> Traefik {ip} on {len(self.node_names())} node(s)")
        if self.offline:
            addons.recycle_volumes(api, self.name, self._empty_volume)

    def _empty_volume(self, node: str, path: str) -> None:
        if path.startswith(VOLUMES_IN_NODE + "/") and node:
            self.exec(node, f"rm -rf {path} && mkdir -m 0755 {path}")

    def values(self) -> dict[str, Any]:
        """Traefik behind a NodePort (the namespace stays Pod Security restricted): the machine's port
        maps to it (laptop) or the forwarder relays to it (contained engine)."""
        return {"global": {"domain": self._domain},
                "traefik": {"service": {"type": "NodePort",
                                        "nodePorts": {"web": kindconfig.HTTP_NODE_PORT,
                                                      "websecure": kindconfig.HTTPS_NODE_PORT}}}}

    # -- stop, start (a reboot) --------------------------------------------------------------------

    def _halt(self, progress: Progress | None) -> None:
        """``docker stop`` of the node containers (systemd in each shuts its node down: SIGTERM, then
        kubelet and containerd stop); the containers, their volumes and the engine stay."""
        nodes = [n for n, running in self._node_states().items() if running] if self._engine_up() else []
        if progress:
            progress(f"docker stop {' '.join(nodes) or '(no running node)'}")
        if nodes:
            # Docker gives a starting container the lowest free address of its network: started in another
            # order, the nodes swap addresses, and the control plane's certificates and etcd name the old
            # one (its API server never answered after a start). Keep each node's address for _resume.
            self._save_info(node_addresses={n: self._node_ip(n) for n in nodes})
            self._run(["docker", "stop", "--time", "30", *nodes], "docker stop (the kind nodes)", timeout=300)

    def _resume(self, *, timeout: float, progress: Progress | None) -> None:
        """``docker start`` of the node containers, then what lives outside them again: the forwarder's
        target (a node may get another address), the routes between the nodes' pod networks, the
        public names in each node's /etc/hosts (Docker rewrites it at start)."""
        say = progress or (lambda _m: None)
        if self.contained and not self.engine.running():
            raise HomeciError(f"{self.describe()}: its Docker engine is not running (a `down` half done?): "
                              f"run `homeci cluster down --provider kind --name {self.name}`, then `up`")
        nodes = start_order(self.node_names(), self.info().get("node_addresses") or {})
        say(f"docker start {' '.join(nodes)}")
        for node in nodes:  # one at a time, lowest address first: each gets the address it had
            self._run(["docker", "start", node], f"docker start {node}", timeout=300)
        kept = self.info().get("node_addresses") or {}
        moved = {n: (kept[n], ip) for n in nodes if n in kept and (ip := self._node_ip(n)) != kept[n]}
        if moved:
            detail = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in sorted(moved.items()))
            raise HomeciError(f"{self.describe()}: node addresses changed on start ({detail}; another "
                              "container took one while the cluster was stopped): its control plane "
                              "cannot come back; "
                              f"run `homeci cluster down --provider kind --name {self.name}`, then `up`")
        if self.contained:
            self.engine.sandbox.forward(https=f"{self._node_ip(f'{self.name}-control-plane')}:"
                                              f"{kindconfig.HTTPS_NODE_PORT}")
        kubeaccess.wait_for("the API server", lambda: None if self.api_answers() else "not answering",
                            timeout=timeout, progress=say)
        if self.offline:
            self._node_network(timeout=timeout, progress=say)
        self._wait_ready(timeout=timeout, progress=say)
        self.publish(release=contract.RELEASE, namespace=contract.NAMESPACE, progress=progress)

    def _engine_up(self) -> bool:
        return not self.contained or self.engine.running()

    # -- down --------------------------------------------------------------------------------------

    def down(self, *, keep_logs: bool = False, keep_images: bool = False) -> bool:
        """Delete the nodes (``kind delete cluster``), stop the contained engine, remove the state."""
        if not self.state.exists():
            return False
        if not self.contained or self.engine.running():
            with_docker = self.contained or engines.host_docker_answers()
            if with_docker:
                self._kind("delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig),
                           what="kind delete cluster", timeout=300)
            elif self.node_names():
                raise HomeciError(f"{self.describe()}: no Docker engine answers, so its nodes cannot be "
                                  f"deleted now: start Docker and run `homeci cluster down --provider kind "
                                  f"--name {self.name}` again")
        if self.contained:
            self.engine.stop(keep_logs=keep_logs)
        if keep_logs:  # the engine's logs stay for the error message; the rest goes
            for child in self.state.iterdir():
                if child.name == "engine":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        else:
            shutil.rmtree(self.state, ignore_errors=True)
        return True

    def leftovers(self) -> list[str]:
        out = self.engine.sandbox.leftovers() if self.contained else []
        if not self.contained and engines.host_docker_answers():
            out += [f"container {n}" for n in self.node_names()]
        if self.state.exists() and any(c.name != "engine" for c in self.state.iterdir()):
            out.append(f"directory {self.state}")
        return out


def _cgroup_v1() -> bool:
    from homeci.cluster.sandbox import cgroups

    return not cgroups.is_v2_only(cgroups.hierarchies())


def _tag(ref: str) -> str:
    return ref.rsplit(":", 1)[1]


def start_order(nodes: list[str], addresses: dict[str, str]) -> list[str]:
    """``nodes`` in the order that gives each its kept address back: lowest kept address first (Docker hands
    a starting container the lowest free one); nodes without a kept address last, in their own order."""
    import ipaddress

    known = sorted((n for n in nodes if n in addresses), key=lambda n: ipaddress.ip_address(addresses[n]))
    return known + [n for n in nodes if n not in addresses]
