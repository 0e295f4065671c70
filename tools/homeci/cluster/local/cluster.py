"""``homeci cluster local``: a one-node real Kubernetes (control plane, containerd, runc, CNI, kubelet,
kube-proxy, CoreDNS) inside a network namespace of its own. See the package docstring for the design.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from homeci import contract, toolchain
from homeci.cluster import kube
from homeci.cluster.local import addons, cgroups, pki, procs
from homeci.cluster.local import config as cfg
from homeci.cluster.local import layout as L
from homeci.cluster.local.layout import Layout
from homeci.errors import HomeciError

Progress = Callable[[str], None]

DEFAULT_NAME = "homeci"
# Not *.localhost: curl (so git) resolves every *.localhost name to the loopback address without
# asking DNS, so in-cluster clones of https://git.<domain>/ would dial the pod itself. `.test` is
# reserved (RFC 6761) and never resolves outside; the host reaches it through the forwarder.
DEFAULT_DOMAIN = "homeci.test"
DEFAULT_RELEASE = "homeci"
DEFAULT_NAMESPACE = "homeci"
API_PORT = 16443
HTTPS_PORT = 8443

TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
         "containerd", "containerd-shim-runc-v2", "ctr", "runc", "cni-bridge", "cni-host-local",
         "cni-loopback", "cni-portmap")
HOST_PROGRAMS = ("unshare", "nsenter", "mount", "ip", "iptables")
CNI_PLUGINS = {"cni-bridge": "bridge", "cni-host-local": "host-local", "cni-loopback": "loopback",
               "cni-portmap": "portmap"}
# Stop order: the node first (so no pod restarts), then the control plane, the namespaces last.
STOP_ORDER = ("kubelet", "kube-proxy", "containerd", "kube-scheduler", "kube-controller-manager",
              "kube-apiserver", "etcd", "forwarder", "holder")
HERE = Path(__file__).resolve().parent


def unsupported_reason() -> str | None:
    """Why this host cannot run the local cluster (None = it can)."""
    if sys.platform != "linux":
        return "the local cluster needs Linux (namespaces, cgroups)"
    if os.geteuid() != 0:
        return "the local cluster needs root (network namespace, mounts, cgroups): run as root"
    missing = [p for p in HOST_PROGRAMS if shutil.which(p) is None]
    if missing:
        return (f"host programs missing: {', '.join(missing)} "
                "(Debian: apt-get install util-linux iproute2 iptables)")
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return None


def missing_tools() -> list[str]:
    return [n for n in TOOLS if toolchain.status(n)[0] not in ("cached", "override")]


def cluster_images() -> tuple[str, str]:
    """(pause image, CoreDNS image) as homeci.images names them."""
    from homeci import images

    return images.PAUSE_IMAGE, images.COREDNS_IMAGE


@dataclass
class Status:
    name: str
    exists: bool
    running_processes: int
    ready: bool
    server: str | None
    version: str | None
    nodes: int
    kubeconfig: Path
    https: str | None = None
    processes: dict[str, bool] = field(default_factory=dict)


class LocalCluster:
    """One named local cluster; all state in ``<cache>/local/<name>``."""

    def __init__(self, name: str = DEFAULT_NAME, *, root: Path | None = None,
                 domain: str | None = None, release: str = DEFAULT_RELEASE,
                 namespace: str = DEFAULT_NAMESPACE) -> None:
        if not name or not name.replace("-", "").isalnum() or name != name.lower() or len(name) > 20:
            raise HomeciError(f"cluster name {name!r}: use up to 20 lower-case letters, digits and dashes")
        self.name = name
        self.layout = Layout.of(name, root)
        # A running cluster keeps the domain it was started with.
        self.domain = str(self.info().get("domain") or domain or DEFAULT_DOMAIN)
        self.release, self.namespace = release, namespace

    # -- where things are -------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.layout.state

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    def info(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.layout.info.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _save_info(self, **changes: Any) -> dict[str, Any]:
        data = {**self.info(), **changes}
        self.layout.state.mkdir(parents=True, exist_ok=True)
        tmp = self.layout.info.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.layout.info)
        return data

    def exists(self) -> bool:
        return self.layout.info.is_file()

    def server(self) -> str | None:
        port = self.info().get("ports", {}).get("api")
        return f"https://127.0.0.1:{port}" if port else None

    def https_url(self, host: str = "git") -> str | None:
        port = self.info().get("ports", {}).get("https")
        return f"https://{host}.{self.domain}:{port}" if port else None

    def pids(self) -> dict[str, int]:
        return {n: p for n, p in procs.read_pids(self.dir).items()
                if procs.alive(p) and procs.owned(p, str(self.dir))}

    def api(self) -> Any:
        return kube.api_client(self.kubeconfig)

    def healthy(self) -> bool:
        if not self.kubeconfig.is_file():
            return False
        live = self.pids()
        if any(n not in live for n in STOP_ORDER):
            return False
        try:
            from kubernetes import client

            client.VersionApi(self.api()).get_code(_request_timeout=3)
            return True
        except Exception:
            return False

    def status(self) -> Status:
        ready, version, nodes = False, None, 0
        live = self.pids()
        if self.exists() and self.healthy():
            from kubernetes import client

            api = self.api()
            version = client.VersionApi(api).get_code().git_version
            items = client.CoreV1Api(api).list_node().items
            nodes = len(items)
            ready = nodes > 0 and all(_node_ready(n) for n in items)
        port = self.info().get("ports", {}).get("https")
        return Status(self.name, self.exists(), len(live), ready, self.server(), version, nodes,
                      self.kubeconfig, f"https://<host>.{self.domain}:{port}" if port else None,
                      {n: n in live for n in STOP_ORDER})

    # -- up ----------------------------------------------------------------------------------------

    def up(self, *, timeout: float = 240, progress: Progress | None = None, build: bool = False) -> bool:
        """Start the cluster and wait for the node and CoreDNS; False if a healthy one was reused.

        On any failure, Ctrl-C or SIGTERM during start-up, everything started is torn down again."""
        reason = unsupported_reason()
        if reason:
            raise HomeciError(reason)
        if self.exists():
            if self.healthy():
                self.recycle_volumes()
                self.publish(progress=progress)
                return False
            raise HomeciError(f"local cluster {self.name!r} exists in {self.dir} but is not healthy: run "
                              f"`homeci cluster local down --name {self.name}`, then `up` again")
        bins = self._binaries(build=build, progress=progress)
        archives = self._image_archives(build=build, progress=progress)
        with _terminate_as_interrupt():
            try:
                self._start(bins, archives, timeout=timeout, progress=progress)
            except BaseException:
                if progress:
                    progress("start-up failed: tearing the cluster down again")
                self.down(keep_logs=True)
                raise
        return True

    def _binaries(self, *, build: bool, progress: Progress | None) -> cfg.Bins:
        paths = {}
        for name in TOOLS:
            paths[name] = toolchain.resolve(name, build=build, progress=progress)
        return cfg.Bins(paths)

    def _image_archives(self, *, build: bool = False, progress: Progress | None = None) -> dict[str, Path]:
        """The pause and CoreDNS archives; a missing one fails with the command that builds it
        (or is built, with ``build``)."""
        from homeci import images

        if build:
            return images.build(cluster_images(), progress)
        out = {}
        for ref in cluster_images():
            path = images.archive_path(ref)
            if not path.is_file():
                raise HomeciError(f"image {ref} is not built: run `homeci cluster local images build {ref}`")
            out[ref] = path
        return out

    def _start(self, bins: cfg.Bins, archives: dict[str, Path], *, timeout: float,
               progress: Progress | None) -> None:
        say = progress or (lambda _m: None)
        t0 = time.monotonic()
        lay = self.layout
        if lay.state.exists():
            shutil.rmtree(lay.state)
        for d in (lay.state, lay.etc, lay.fs, lay.cni_bin, lay.cni_conf, lay.cni_data, lay.volumes):
            d.mkdir(parents=True, exist_ok=True)
        hs = cgroups.hierarchies()
        v1 = not cgroups.is_v2_only(hs)
        parent = cgroups.parent_path(self.name)
        ports = {"api": _free_port(API_PORT), "https": _free_port(HTTPS_PORT)}
        self._save_info(parent=parent, created_cgroups=[], ports=ports, domain=self.domain,
                        hierarchies=[h.__dict__ | {"mountpoint": str(h.mountpoint)} for h in hs])
        created = cgroups.create(hs, parent)
        self._save_info(created_cgroups=created)
        say("certificates and configuration")
        self._write_pki_and_configs(bins, parent=parent, v1=v1)
        system = f"{parent}/system"

        def start(name: str, cmd: list[str], holder: int | None) -> int:
            return procs.start(name, cmd, state=lay.state, hierarchies=hs, cgroup=system, holder=holder)

        say("network and mount namespace (holder)")
        holder = self._start_holder(hs, system)
        say("forwarder on 127.0.0.1")
        self._start_forwarder(hs, system, holder, ports)
        say("etcd and kube-apiserver")
        start("etcd", cfg.etcd_cmd(bins, lay), holder)
        start("kube-apiserver", cfg.apiserver_cmd(bins, lay), holder)
        self._wait_api(timeout=timeout, progress=say)
        start("kube-controller-manager", cfg.controller_manager_cmd(bins, lay), holder)
        start("kube-scheduler", cfg.scheduler_cmd(bins, lay), holder)
        say("containerd")
        env = {**os.environ, "PATH": f"{lay.state / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        procs.start("containerd", cfg.containerd_cmd(bins, lay), state=lay.state, hierarchies=hs,
                    cgroup=system, holder=holder, env=env)
        self._wait_containerd(timeout=60)
        say("importing the pause and CoreDNS images")
        self.load_images(list(archives.values()))
        say("kubelet and kube-proxy")
        start("kubelet", cfg.kubelet_cmd(bins, lay), holder)
        start("kube-proxy", cfg.kube_proxy_cmd(bins, lay), holder)
        self._apply_addons()
        self._wait_ready(timeout=timeout, progress=say)
        self._save_info(started_seconds=round(time.monotonic() - t0, 1))
        self.publish(progress=progress)

    def _write_pki_and_configs(self, bins: cfg.Bins, *, parent: str, v1: bool) -> None:
        lay, d = self.layout, self.layout.pki
        ca = pki.ensure_ca(d, f"homeci local cluster {self.name}")
        pki.ensure_leaf(ca, d, "apiserver", cn="kube-apiserver", server_names=(
            "127.0.0.1", "localhost", L.NODE_IP, L.KUBERNETES_SERVICE_IP, "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", f"kubernetes.default.svc.{L.CLUSTER_DOMAIN}"))
        pki.ensure_leaf(ca, d, "apiserver-kubelet-client", cn="kube-apiserver-kubelet-client",
                        orgs=("system:masters",), client=True)
        pki.ensure_leaf(ca, d, "kubelet-serving", cn=lay.node_name, server_names=(lay.node_name, L.NODE_IP))
        pki.ensure_sa_keys(d)
        inside = f"https://{L.NODE_IP}:{L.APISERVER_PORT}"
        clients = {
            "admin": ("homeci-admin", ("system:masters",)),
            "controller-manager": ("system:kube-controller-manager", ()),
            "scheduler": ("system:kube-scheduler", ()),
            "kubelet": (f"system:node:{lay.node_name}", ("system:nodes",)),
            "kube-proxy": ("system:kube-proxy", ()),
        }
        for stem, (cn, orgs) in clients.items():
            pair = pki.ensure_leaf(ca, d, stem, cn=cn, orgs=orgs, client=True)
            if stem == "admin":
                pki.write_kubeconfig(lay.etc / "admin.kubeconfig", server=inside, ca=ca.cert, client=pair,
                                     user=cn, cluster=f"homeci-local-{self.name}")
                port = self.info()["ports"]["api"]
                pki.write_kubeconfig(lay.kubeconfig, server=f"https://127.0.0.1:{port}", ca=ca.cert,
                                     client=pair, user=cn, cluster=f"homeci-local-{self.name}")
            else:
                pki.write_kubeconfig(lay.etc / f"{stem}.kubeconfig", server=inside, ca=ca.cert, client=pair,
                                     user=cn, cluster=f"homeci-local-{self.name}")
        pause, _ = cluster_images()
        (lay.etc / "containerd.toml").write_text(
            cfg.containerd_toml(lay, runc=bins["runc"], pause_image=pause))
        (lay.cni_conf / "10-homeci.conflist").write_text(cfg.cni_conflist(lay))
        for tool, plugin in CNI_PLUGINS.items():
            (lay.cni_bin / plugin).symlink_to(bins[tool])
        bindir = lay.state / "bin"
        bindir.mkdir(exist_ok=True)
        for tool in ("containerd-shim-runc-v2", "runc"):
            (bindir / toolchain.tool(tool).binary).symlink_to(bins[tool])
        (lay.etc / "resolv.conf").write_text("# no nameserver: pods use cluster DNS only\n")
        cfg.write_yaml(lay.etc / "kubelet.yaml", cfg.kubelet_config(lay, cgroup_root=parent, cgroup_v1=v1))
        cfg.write_yaml(lay.etc / "kube-proxy.yaml", cfg.kube_proxy_config(lay))
        for i in range(addons.VOLUME_POOL):
            addons.volume_dir(lay.volumes, i).mkdir(parents=True, exist_ok=True)

    def _hosts_file(self, traefik_ip: str | None) -> str:
        lines = ["127.0.0.1 localhost", f"{L.NODE_IP} {self.layout.node_name}"]
        if traefik_ip:
            names = " ".join(contract.hosts({"global": {"domain": self.domain}}).values())
            lines.append(f"{traefik_ip} {names}")
        return "\n".join(lines) + "\n"

    def _start_holder(self, hs: list[cgroups.Hierarchy], system: str) -> int:
        lay = self.layout
        plan = {
            "status_file": str(lay.holder_status), "fs": str(lay.fs), "hosts": self._hosts_file(None),
            "hierarchies": [{"mountpoint": str(h.mountpoint), "fstype": h.fstype, "options": h.options}
                            for h in hs],
            "network": {"bridge": L.NODE_BRIDGE, "node_ip": L.NODE_IP, "node_prefix": L.NODE_PREFIX,
                        "service_cidr": L.SERVICE_CIDR},
        }
        lay.holder_plan.write_text(json.dumps(plan, indent=2))
        lay.holder_status.unlink(missing_ok=True)
        cmd = ["unshare", "--net", "--mount", "--propagation", "slave", "--",
               sys.executable, str(HERE / "holder.py"), str(lay.holder_plan)]
        pid = procs.start("holder", cmd, state=lay.state, hierarchies=hs, cgroup=system, holder=None)
        self._wait_status(lay.holder_status, "holder", pid)
        return pid

    def _start_forwarder(self, hs: list[cgroups.Hierarchy], system: str, holder: int,
                         ports: dict[str, int]) -> None:
        lay = self.layout
        plan = {
            "netns": f"/proc/{holder}/ns/net", "status_file": str(lay.state / "forwarder.status"),
            "targets_file": str(lay.state / "forward-targets.json"),
            "listeners": [{"name": n, "port": p} for n, p in ports.items()],
        }
        (lay.state / "forward-targets.json").write_text(
            json.dumps({"api": f"{L.NODE_IP}:{L.APISERVER_PORT}"}))
        (lay.state / "forward.json").write_text(json.dumps(plan, indent=2))
        cmd = [sys.executable, str(HERE / "forward.py"), str(lay.state / "forward.json")]
        pid = procs.start("forwarder", cmd, state=lay.state, hierarchies=hs, cgroup=system, holder=None)
        self._wait_status(lay.state / "forwarder.status", "forwarder", pid)

    def _wait_status(self, path: Path, name: str, pid: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text().strip() if path.is_file() else ""
            if text == "ready":
                return
            if text.startswith("error"):
                raise HomeciError(f"{name}: {text}; log: {self.dir / 'logs' / (name + '.log')}")
            if not procs.alive(pid):
                raise HomeciError(f"{name} exited at start: {procs.log_tail(self.dir, name)}")
            time.sleep(0.05)
        raise HomeciError(f"{name} not ready after {timeout:.0f}s: {procs.log_tail(self.dir, name)}")

    def _check_alive(self, *names: str) -> None:
        live = self.pids()
        for n in names:
            if n not in live:
                raise HomeciError(f"{n} exited: {procs.log_tail(self.dir, n)} "
                                  f"(log: {self.dir / 'logs' / (n + '.log')})")

    def _wait_api(self, *, timeout: float, progress: Progress) -> None:
        """/readyz, not /version: the controller-manager must not start before the RBAC bootstrap."""

        def ready() -> str | None:
            self._check_alive("etcd", "kube-apiserver")
            resp = self.api().call_api("/readyz", "GET", auth_settings=["BearerToken"],
                                       response_type="str", _preload_content=False, _request_timeout=3)
            body = resp[0].data.decode(errors="replace").strip()
            return None if body == "ok" else f"readyz: {body[:60]}"

        _wait("the API server", ready, timeout=timeout, progress=progress)

    def _wait_containerd(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("containerd")
            if self.layout.containerd_socket.exists() and self._ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise HomeciError(f"containerd not answering after {timeout:.0f}s: "
                          f"{procs.log_tail(self.dir, 'containerd')}")

    def _ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        ctr = toolchain.resolve("ctr")
        cmd = [str(ctr), "--address", str(self.layout.containerd_socket), "--namespace", "k8s.io", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise HomeciError(f"ctr {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
        return proc

    def load_images(self, archives: list[Path], progress: Progress | None = None) -> list[str]:
        """Import OCI archives into the node's containerd (``ctr -n k8s.io images import``)."""
        if not self.layout.containerd_socket.exists():
            raise HomeciError(f"local cluster {self.name!r} is not running: run `homeci cluster local up`")
        for archive in archives:
            if progress:
                progress(f"importing {archive.name}")
            self._ctr("images", "import", str(archive))
        return self.images()

    def images(self) -> list[str]:
        return [ln.split()[0] for ln in self._ctr("images", "list", "-q").stdout.splitlines() if ln.strip()]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(toolchain.resolve("kubectl")), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise HomeciError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()[:400]}")
        return proc

    def apply(self, objs: list[dict[str, Any]]) -> None:
        """Server-side apply (field manager ``homeci-local``), through the Python client."""
        from kubernetes.dynamic import DynamicClient

        dyn = DynamicClient(self.api())
        for obj in objs:
            res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            dyn.server_side_apply(res, body=obj, field_manager="homeci-local", force_conflicts=True)

    def _apply_addons(self) -> None:
        _, coredns_image = cluster_images()
        traefik = f"{self.release}-traefik.{self.namespace}.svc.{L.CLUSTER_DOMAIN}"
        self.apply(addons.coredns_objects(image=coredns_image, domain=self.domain, traefik_service=traefik))
        self.apply(addons.storage_objects(node=self.layout.node_name, volumes=self.layout.volumes,
                                          cluster=self.name))

    def _wait_ready(self, *, timeout: float, progress: Progress) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        apps = client.AppsV1Api(self.api())

        def node() -> str | None:
            self._check_alive("kubelet", "containerd", "kube-controller-manager", "kube-scheduler")
            items = core.list_node().items
            if not items:
                return "node not registered yet"
            return None if all(_node_ready(n) for n in items) else "node not Ready"

        def default_sa() -> str | None:
            core.read_namespaced_service_account("default", "default")
            return None

        def dns() -> str | None:
            d = apps.read_namespaced_deployment(addons.COREDNS, "kube-system")
            if (d.status.ready_replicas or 0) >= 1:
                return None
            pods = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
            for p in pods:
                for cs in p.status.container_statuses or []:
                    w = cs.state.waiting if cs.state else None
                    if w and w.reason in ("ErrImageNeverPull", "ErrImagePull", "CrashLoopBackOff",
                                          "CreateContainerConfigError", "CreateContainerError"):
                        return f"{w.reason}: {(w.message or '')[:150]}"
            return "CoreDNS not Ready"

        _wait("the node", node, timeout=timeout, progress=progress)
        _wait("the default ServiceAccount", default_sa, timeout=timeout, progress=progress)
        _wait("CoreDNS", dns, timeout=timeout, progress=progress)

    # -- public names --------------------------------------------------------------------------------

    def traefik_ip(self) -> str | None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            svc = client.CoreV1Api(self.api()).read_namespaced_service(f"{self.release}-traefik",
                                                                       self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        ip = svc.spec.cluster_ip
        return str(ip) if ip and ip != "None" else None

    def publish(self, progress: Progress | None = None) -> str | None:
        """Point the node's /etc/hosts and the forwarder's https port at Traefik's ClusterIP (if
        installed). Pods need nothing: CoreDNS rewrites ``*.<domain>`` to the Traefik Service."""
        ip = self.traefik_ip()
        holder = self.pids().get("holder")
        if holder is None:
            raise HomeciError(f"local cluster {self.name!r} is not running: run `homeci cluster local up`")
        Path(f"/proc/{holder}/root/etc/hosts").write_text(self._hosts_file(ip))
        targets = self.layout.state / "forward-targets.json"
        data = json.loads(targets.read_text()) if targets.is_file() else {}
        data["api"] = f"{L.NODE_IP}:{L.APISERVER_PORT}"
        if ip:
            data["https"] = f"{ip}:443"
        tmp = targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(targets)
        if progress and ip:
            progress(f"public names -> Traefik {ip}")
        return ip

    def recycle_volumes(self) -> list[str]:
        """Make the pool's Released PVs (their claim was deleted) Available again, emptied."""
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        done = []
        for pv in core.list_persistent_volume(label_selector=f"homeci.dev/local-pool={self.name}").items:
            if pv.status.phase != "Released" or not pv.spec.local:
                continue
            path = Path(pv.spec.local.path)
            if self.dir not in path.parents:
                continue
            for child in path.iterdir() if path.is_dir() else []:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            path.chmod(0o755)
            os.chown(path, 0, 0)
            core.patch_persistent_volume(pv.metadata.name, {"spec": {"claimRef": None}})
            done.append(pv.metadata.name)
        return done

    def install_stack(self, *, major: int = 3, values_files: list[Path] | None = None,
                      timeout: str = "10m", progress: Progress | None = None) -> Any:
        """Build and load every image a default render references, ``helm upgrade --install --wait``
        the umbrella (restricted namespace, this cluster's values first), then publish the names."""
        from homeci import images
        from homeci.cluster import stack as stackmod

        refs = [r.ref for r in images.referenced_images() if r.default]
        archives = images.build(refs, progress)
        loaded = set(self.load_images(sorted(set(archives.values())), progress=progress))
        absent = [images.normalize(r) for r in refs if images.normalize(r) not in loaded]
        if absent:
            raise HomeciError(f"image {absent[0]} is not in the node's containerd after the import: run "
                              f"`homeci cluster local images load {absent[0]}` and check its archive")
        self.recycle_volumes()
        if progress:
            progress(f"helm{major} upgrade --install --wait {stackmod.RELEASE}")
        done = stackmod.install(self, major=major, values_files=[self.values_file(), *(values_files or [])],
                                timeout=timeout)
        self.publish(progress=progress)
        return done

    def install_values(self) -> dict[str, Any]:
        """Umbrella values this cluster needs. Traefik's Service is a ClusterIP: there is no
        LoadBalancer controller, and nothing outside the namespace could reach a node port anyway —
        the host comes in through the forwarder, pods through CoreDNS's rewrite, containerd through
        the holder's /etc/hosts, all to that one ClusterIP."""
        return {"global": {"domain": self.domain}, "traefik": {"service": {"type": "ClusterIP"}}}

    def values_file(self) -> Path:
        """``install_values`` written to ``<state>/values.yaml`` (for ``helm -f``)."""
        import yaml

        path = self.dir / "values.yaml"
        path.write_text(yaml.safe_dump(self.install_values(), sort_keys=False))
        return path

    # -- down ----------------------------------------------------------------------------------------

    def down(self, *, keep_logs: bool = False) -> bool:
        """Stop everything and delete the state directory (but its ``logs`` with ``keep_logs``, after a
        failed start, so the error's log path stays valid); False if there was no cluster."""
        info = self.info()
        if not self.dir.exists():
            return False
        marker = str(self.dir)
        pids = procs.read_pids(self.dir)
        ordered = {n: pids[n] for n in STOP_ORDER if n in pids}
        ordered.update({n: p for n, p in pids.items() if n not in ordered})
        parent = info.get("parent")
        hs = cgroups.hierarchies()
        # Node first: kubelet, then every container in the node's cgroups, then the rest.
        if "kubelet" in ordered:
            procs.stop({"kubelet": ordered.pop("kubelet")}, marker=marker, timeout=5)
        if parent:
            cgroups.kill_all(hs, f"{parent}/kubepods")
        # etcd is wiped below: a graceful control-plane shutdown buys nothing (the API server lingers
        # ~50 s after SIGTERM), so a short deadline, then SIGKILL.
        procs.stop(ordered, marker=marker, timeout=3)
        left: list[str] = []
        if parent:
            cgroups.kill_all(hs, parent)
            left = cgroups.remove(hs, parent, info.get("created_cgroups", []))
        self._wipe(keep_logs)
        if left:
            raise HomeciError(f"cgroups left behind: {', '.join(left)}; remove them with rmdir")
        return True

    def _wipe(self, keep_logs: bool) -> None:
        for attempt in range(3):
            for child in list(self.dir.iterdir()) if self.dir.is_dir() else []:
                if keep_logs and child.name == "logs":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=attempt < 2)
                else:
                    child.unlink(missing_ok=True)
            if not self._state_left():
                break
            time.sleep(0.5)
        if not keep_logs and self.dir.is_dir():
            shutil.rmtree(self.dir)

    def _state_left(self) -> list[str]:
        """What is left in the state directory besides preserved logs."""
        return sorted(c.name for c in self.dir.iterdir() if c.name != "logs") if self.dir.is_dir() else []

    def leftovers(self) -> list[str]:
        """Everything this cluster could leave behind that still exists (empty = clean)."""
        out: list[str] = []
        marker = str(self.dir)
        for p in Path("/proc").iterdir():
            if p.name.isdigit() and int(p.name) != os.getpid() and procs.owned(int(p.name), marker):
                out.append(f"process {p.name}")
        mounts = Path("/proc/self/mountinfo").read_text()
        out += [f"mount {ln.split()[4]}" for ln in mounts.splitlines() if marker in ln]
        info = self.info()
        if info.get("parent"):
            out += [f"cgroup {c}" for c in cgroups.leftovers(cgroups.hierarchies(), info["parent"],
                                                              info.get("created_cgroups", []))]
        left = self._state_left()
        if left:
            out.append(f"directory {self.dir} ({', '.join(left[:5])})")
        return out


def host_iptables_chains() -> list[str]:
    """KUBE-* rules in the host's own network namespace (there must never be any from us).

    Only the ``-save`` tools: they read existing tables, while ``iptables-legacy -S`` would create
    empty legacy tables in the host's namespace just by listing them."""
    found: list[str] = []
    for prog in ("iptables-nft-save", "iptables-legacy-save"):
        if shutil.which(prog) is None:
            continue
        out = subprocess.run([prog], capture_output=True, text=True, check=False).stdout
        found += [ln for ln in out.splitlines() if "KUBE-" in ln]
    return found


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise HomeciError("no free TCP port on 127.0.0.1")


def _wait(what: str, check: Callable[[], str | None], *, timeout: float, progress: Progress) -> None:
    """Poll ``check`` like kube.wait_for, but a HomeciError (a daemon died) fails at once."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while time.monotonic() < deadline:
        try:
            result = check()
        except HomeciError:
            raise
        except Exception as exc:  # connection refused before the API server listens, API errors
            result = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        if result is None:
            return
        reason = result
        progress(f"{what}: {reason}")
        time.sleep(0.25)
    raise HomeciError(f"timed out after {timeout:.0f}s waiting for {what} ({reason})")


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
