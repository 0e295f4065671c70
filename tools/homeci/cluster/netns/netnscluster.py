"""Provider ``netns`` (alias ``local``): a one-node real Kubernetes (control plane, containerd, runc, CNI,
kubelet, kube-proxy, CoreDNS) inside a network namespace of its own (a :class:`Sandbox`), on a Linux host
as root, without Docker. See the package docstring for the design.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from homeci import contract, kubeaccess, toolchain
from homeci.cluster import addons, tools
from homeci.cluster.netns import daemons, pki
from homeci.cluster.netns import layout as L
from homeci.cluster.netns.layout import Layout
from homeci.cluster.provider import REAL_DOMAIN, ClusterBase, Progress, Record
from homeci.cluster.sandbox import cgroups, procs
from homeci.cluster.sandbox.box import Phase, Sandbox
from homeci.errors import HomeciError

API_PORT = 16443
HTTPS_PORT = 8443
# Image archives imported at once. containerd gunzips and writes each layer, one import keeps about one
# core busy: the stack's 13 archives took 12.7 s one at a time, 9.6 s two and 8.8 s four at a time here
# (2 cores).
IMPORT_WORKERS = 3

TOOLS = tools.NETNS
CNI_PLUGINS = {"cni-bridge": "bridge", "cni-host-local": "host-local", "cni-loopback": "loopback",
               "cni-portmap": "portmap"}
DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet",
           "kube-proxy", "forwarder", "holder")
NODE_DAEMONS = DAEMONS[:-2]  # the forwarder and the holder are the sandbox's, not the node's
# Node first (kubelet, then every container in the node's cgroups), so no pod restarts; etcd is wiped
# anyway, so the control plane gets a short deadline (the API server lingers ~50 s after SIGTERM).
TEARDOWN = (Phase(("kubelet",), "kubepods", timeout=5),
            Phase(("kube-proxy", "containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver",
                   "etcd")))
# A shutdown (`stop`): the same order, but every container gets SIGTERM and 10 s to exit (a machine's
# shutdown does that), and etcd is stopped last, after the API server, so its data is closed cleanly.
SHUTDOWN = (Phase(("kubelet",), "kubepods", timeout=5, grace=10),
            Phase(("kube-proxy", "containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver"),
                  timeout=10),
            Phase(("etcd",), timeout=10))


def cluster_images() -> tuple[str, str]:
    """(pause image, CoreDNS image) as homeci.images names them."""
    from homeci import images

    return images.PAUSE_IMAGE, images.COREDNS_IMAGE


def archive_digest(archive: Path) -> str | None:
    """The manifest digest an OCI image archive's index names (what ``ctr images import`` stores)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.load(member) if member else {}
    except (OSError, KeyError, tarfile.TarError, ValueError):
        return None
    manifests = index.get("manifests") or []
    return str(manifests[0].get("digest")) if len(manifests) == 1 else None


def lacking(archives: Mapping[str, Path], held: Mapping[str, str]) -> list[Path]:
    """The archives (reference -> archive) whose image the node does not hold under that reference with that
    content (``held``: :meth:`NetnsCluster.image_digests`)."""
    return [a for ref, a in archives.items() if held.get(ref) != archive_digest(a)]


def biggest_first(archives: Iterable[Path]) -> list[Path]:
    """The longest imports start first, so parallel imports end together."""
    return sorted(archives, key=lambda a: (-a.stat().st_size, a))


def missing_tools() -> list[str]:
    return [n for n in TOOLS if toolchain.status(n)[0] not in ("cached", "override")]


class NetnsCluster(ClusterBase):
    """One named real node; all state in ``<cache>/local/<name>``."""

    provider = "netns"

    def __init__(self, name: str, *, root: Path | None = None, domain: str | None = None) -> None:
        super().__init__(name, max_length=20)
        self.layout = Layout.of(name, root)
        self.sandbox = Sandbox(name, self.layout.state)
        # A running cluster keeps the domain it was started with.
        self._domain = str(self.info().get("domain") or domain or REAL_DOMAIN)
        # preload(): images imported while the node comes up; load_images() waits for them.
        self._preload: list[str] = []
        self._imports: ThreadPoolExecutor | None = None
        self._pending: dict[Path, Future[Path]] = {}
        # after down(keep_images=True): why the image store was not kept (empty: it was, or not asked)
        self.not_kept: list[str] = []

    # -- where things are -------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.layout.state

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    def info(self) -> dict[str, Any]:
        return Record(self.layout.info).read()

    @property
    def _facts(self) -> Record:
        return Record(self.layout.info)

    def _save_info(self, **changes: Any) -> None:
        Record(self.layout.info).update(**changes)

    def exists(self) -> bool:
        return self.layout.info.is_file()

    def domain(self) -> str:
        return self._domain

    def server(self) -> str | None:
        port = self.sandbox.ports.get("api")
        return f"https://127.0.0.1:{port}" if port else None

    def https_port(self) -> int | None:
        return self.sandbox.ports.get("https")

    def pids(self) -> dict[str, int]:
        return self.sandbox.pids()

    def processes(self) -> dict[str, bool]:
        live = self.pids()
        return {n: n in live for n in DAEMONS}

    def healthy(self) -> bool:
        return all(self.processes().values()) and self.api_answers()

    # -- up ----------------------------------------------------------------------------------------

    def build_needs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return TOOLS, cluster_images()

    def preload(self, refs: list[str]) -> None:
        """Import ``refs`` (built first, with ``build``), in the order given, in the background from the
        moment containerd answers, while the kubelet starts and CoreDNS gets ready; :meth:`load_images`
        waits for those it is asked for (the rest go on importing meanwhile)."""
        self._preload = list(refs)

    def _prepare(self, *, build: bool,
                 progress: Progress | None) -> tuple[daemons.Bins, dict[str, Path], dict[str, Path]]:
        """The node's binaries, the pause and CoreDNS archives (a missing one fails with the command that
        builds it, or is built with ``build``) and the archives of :meth:`preload` found or built."""
        from homeci import images

        bins = daemons.Bins({name: toolchain.resolve(name, build=build, progress=progress) for name in TOOLS})
        if build:
            archives = images.build(cluster_images(), progress)
            later = images.build(self._preload, progress) if self._preload else {}
        else:
            archives = {}
            for ref in cluster_images():
                path = images.archive_path(ref)
                if not path.is_file():
                    raise HomeciError(f"image {ref} is not built: run `homeci cluster images build {ref}`")
                archives[ref] = path
            # not built: load_images() says so, with the command that builds it
            later = {images.normalize(r): images.archive_path(r) for r in self._preload
                     if images.archive_path(r).is_file()}
        own = set(archives.values())
        wanted = (images.normalize(r) for r in self._preload)  # in the order given
        return bins, archives, {ref: later[ref] for ref in wanted if ref in later and later[ref] not in own}

    def _create(self, prepared: tuple[daemons.Bins, dict[str, Path], dict[str, Path]], *, timeout: float,
                progress: Progress | None) -> None:
        say = progress or (lambda _m: None)
        bins, archives, later = prepared

        def before_kubelet() -> None:
            # a store the last `down` kept holds most images already: only what it lacks, or holds older
            held = self.image_digests()
            self._import(lacking(archives, held))
            self._import_in_background(lacking(later, held))

        t0 = time.monotonic()
        say("network and mount namespace (holder), forwarder on 127.0.0.1")
        self.sandbox.create(ports={"api": (API_PORT,), "https": (HTTPS_PORT,)},
                            targets={"api": f"{L.NODE_IP}:{L.APISERVER_PORT}"}, hosts=self._hosts_file(None),
                            network={"bridge": L.NODE_BRIDGE, "node_ip": L.NODE_IP,
                                     "node_prefix": L.NODE_PREFIX, "service_cidr": L.SERVICE_CIDR})
        self._save_info(domain=self._domain)
        kept = self._adopt_kept_images()
        say("certificates and configuration" + (" (the image store the last `down` kept)" if kept else ""))
        self._write_pki_and_configs(bins)
        self._start_daemons(bins, timeout=timeout, progress=say, before_kubelet=before_kubelet)
        self._apply_addons()
        self._wait_ready(timeout=timeout, progress=say)
        self._save_info(started_seconds=round(time.monotonic() - t0, 1))
        self._publish_names(progress)

    def _commands(self, bins: daemons.Bins) -> dict[str, tuple[list[str], dict[str, str] | None]]:
        """Daemon -> (command line, environment or None): how the node starts each one, at its creation,
        at a boot (:meth:`start`) and after a crash (:meth:`restart_daemon`)."""
        lay = self.layout
        env = {**os.environ, "PATH": f"{lay.state / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        return {
            "etcd": (daemons.etcd_cmd(bins, lay), None),
            "kube-apiserver": (daemons.apiserver_cmd(bins, lay), None),
            "kube-controller-manager": (daemons.controller_manager_cmd(bins, lay), None),
            "kube-scheduler": (daemons.scheduler_cmd(bins, lay), None),
            "containerd": (daemons.containerd_cmd(bins, lay), env),
            "kubelet": (daemons.kubelet_cmd(bins, lay), None),
            "kube-proxy": (daemons.kube_proxy_cmd(bins, lay), None),
        }

    def _start_daemon(self, name: str, bins: daemons.Bins) -> int:
        cmd, env = self._commands(bins)[name]
        return self.sandbox.start(name, cmd, env=env)

    def _start_daemons(self, bins: daemons.Bins, *, timeout: float, progress: Progress,
                       before_kubelet: Callable[[], None] | None = None) -> None:
        """The control plane, containerd, kubelet and kube-proxy, each once what it talks to answers:
        containerd starts beside etcd and the API server (it needs neither), so ``before_kubelet``'s
        imports use the seconds the API server takes to start."""
        progress("etcd, kube-apiserver and containerd")
        self._start_daemon("etcd", bins)
        self._start_daemon("kube-apiserver", bins)
        self._start_daemon("containerd", bins)
        self._wait_containerd(timeout=60)
        if before_kubelet is not None:
            progress("importing the pause and CoreDNS images")
            before_kubelet()
        self._wait_api(timeout=timeout, progress=progress)
        self._start_daemon("kube-controller-manager", bins)
        self._start_daemon("kube-scheduler", bins)
        progress("kubelet and kube-proxy")
        self._start_daemon("kubelet", bins)
        self._start_daemon("kube-proxy", bins)

    # -- stop, start (a reboot), crashes -------------------------------------------------------------

    def _halt(self, progress: Progress | None) -> None:
        if progress:
            progress("kubelet, the pods (SIGTERM, then a grace period), the node and the control plane")
        self.sandbox.stop(SHUTDOWN)

    def _resume(self, *, timeout: float, progress: Progress | None) -> None:
        """The same node from its state directory: new namespaces and cgroups (a boot), the daemons with
        their kept data (etcd, containerd's images and snapshots, kubelet's pods, PKI, volumes, the /etc
        overlay), Kubernetes restarting every pod, then the public names pointed at Traefik again."""
        say = progress or (lambda _m: None)
        bins = daemons.Bins({name: toolchain.resolve(name) for name in TOOLS})
        t0 = time.monotonic()
        say("network and mount namespace (holder), forwarder on the same ports")
        self.sandbox.restart()
        parent = self.sandbox.parent
        assert parent is not None
        v1 = not cgroups.is_v2_only(cgroups.hierarchies())
        # the cgroup parent nests in the starting process's own cgroup: kubelet is told the new path
        daemons.write_yaml(self.layout.etc / "kubelet.yaml",
                           daemons.kubelet_config(self.layout, cgroup_root=parent, cgroup_v1=v1))
        self._start_daemons(bins, timeout=timeout, progress=say)
        self._wait_ready(timeout=timeout, progress=say)
        self._save_info(booted_seconds=round(time.monotonic() - t0, 1))
        self._publish_names(progress)

    def crash(self, daemon: str) -> int:
        """Kill ``daemon`` (one of :data:`DAEMONS` the node runs: containerd, kubelet, ...) with SIGKILL by
        its recorded pid, as a crash would; the pid it had."""
        pid = self.pids().get(daemon)
        if pid is None or daemon not in NODE_DAEMONS:
            raise HomeciError(f"{self.describe()} runs no {daemon!r} to crash (running: "
                              f"{', '.join(sorted(self.pids()))})")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while procs.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pid

    def restart_daemon(self, daemon: str, *, timeout: float = 120) -> int:
        """Start ``daemon`` again the way the node starts it (a supervisor restarting a crashed service);
        returns once it answers (containerd: its socket; kubelet: the node Ready); its new pid."""
        if daemon in self.pids():
            raise HomeciError(f"{daemon} of {self.describe()} is running: crash or stop it first")
        bins = daemons.Bins({name: toolchain.resolve(name) for name in TOOLS})
        pid = self._start_daemon(daemon, bins)
        if daemon == "containerd":
            self._wait_containerd(timeout=timeout)
        elif daemon == "kubelet":
            ClusterBase._wait_ready(self, timeout=timeout, progress=None)  # the node, not CoreDNS
        elif daemon == "kube-apiserver":
            self._wait_api(timeout=timeout, progress=lambda _m: None)
        return pid

    def _write_pki_and_configs(self, bins: daemons.Bins) -> None:
        lay, d = self.layout, self.layout.pki
        for folder in (lay.etc, lay.cni_bin, lay.cni_conf, lay.cni_data, lay.volumes):
            folder.mkdir(parents=True, exist_ok=True)
        ca = pki.ensure_ca(d, f"homeci netns cluster {self.name}")
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
            # every controller acts as the controller manager (daemons.controller_manager_cmd says why)
            "controller-manager": ("system:kube-controller-manager", ("system:masters",)),
            "scheduler": ("system:kube-scheduler", ()),
            "kubelet": (f"system:node:{lay.node_name}", ("system:nodes",)),
            "kube-proxy": ("system:kube-proxy", ()),
        }
        context = f"homeci-netns-{self.name}"
        for stem, (cn, orgs) in clients.items():
            pair = pki.ensure_leaf(ca, d, stem, cn=cn, orgs=orgs, client=True)
            pki.write_kubeconfig(lay.etc / f"{stem}.kubeconfig", server=inside, ca=ca.cert, client=pair,
                                 user=cn, cluster=context)
            if stem == "admin":
                pki.write_kubeconfig(lay.kubeconfig, server=f"https://127.0.0.1:{self.sandbox.ports['api']}",
                                     ca=ca.cert, client=pair, user=cn, cluster=context)
        pause, _ = cluster_images()
        runc = str(bins["runc"])
        (lay.etc / "containerd.toml").write_text(daemons.containerd_toml(lay, runc=runc, pause_image=pause))
        (lay.cni_conf / "10-homeci.conflist").write_text(daemons.cni_conflist(
            subnet=L.NODE_POD_CIDR, gateway=L.POD_GATEWAY, data_dir=str(lay.cni_data)))
        for tool, plugin in CNI_PLUGINS.items():
            (lay.cni_bin / plugin).symlink_to(bins.paths[tool])
        bindir = lay.state / "bin"
        bindir.mkdir(exist_ok=True)
        for tool in ("containerd-shim-runc-v2", "runc"):
            (bindir / toolchain.tool(tool).binary).symlink_to(bins.paths[tool])
        (lay.etc / "resolv.conf").write_text("# no nameserver: pods use cluster DNS only\n")
        parent = self.sandbox.parent
        assert parent is not None
        v1 = not cgroups.is_v2_only(cgroups.hierarchies())
        daemons.write_yaml(lay.etc / "kubelet.yaml",
                           daemons.kubelet_config(lay, cgroup_root=parent, cgroup_v1=v1))
        daemons.write_yaml(lay.etc / "kube-proxy.yaml", daemons.kube_proxy_config(lay))
        for i in range(addons.VOLUME_POOL):
            Path(addons.volume_dir(str(lay.volumes), i)).mkdir(parents=True, exist_ok=True)

    def _hosts_file(self, traefik_ip: str | None) -> str:
        lines = ["127.0.0.1 localhost", f"{L.NODE_IP} {self.layout.node_name}"]
        if traefik_ip:
            names = " ".join(contract.hosts({"global": {"domain": self._domain}}).values())
            lines.append(f"{traefik_ip} {names}")
        return "\n".join(lines) + "\n"

    def _wait_api(self, *, timeout: float, progress: Progress) -> None:
        """/readyz, not /version: the controller-manager must not start before the RBAC bootstrap."""

        def ready() -> str | None:
            self.sandbox.check_alive("etcd", "kube-apiserver")
            resp = self.api().call_api("/readyz", "GET", auth_settings=["BearerToken"],
                                       response_type="str", _preload_content=False, _request_timeout=3)
            body = resp[0].data.decode(errors="replace").strip()
            return None if body == "ok" else f"readyz: {body[:60]}"

        kubeaccess.wait_for("the API server", ready, timeout=timeout, progress=progress, interval=0.25)

    def _wait_containerd(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sandbox.check_alive("containerd")
            if self.layout.containerd_socket.exists() and self._ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise HomeciError(f"containerd not answering after {timeout:.0f}s: "
                          f"{self.sandbox.log_tail('containerd')}")

    def _ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        ctr = toolchain.resolve("ctr")
        cmd = [str(ctr), "--address", str(self.layout.containerd_socket), "--namespace", "k8s.io", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise HomeciError(f"ctr {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
        return proc

    def _import_one(self, archive: Path) -> Path:
        self._ctr("images", "import", str(archive))
        return archive

    def _import(self, archives: list[Path], progress: Progress | None = None) -> None:
        """``archives`` into the node's containerd, IMPORT_WORKERS at a time."""
        if len(archives) < 2:
            for archive in archives:
                self._import_one(archive)
            return
        with ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="homeci-import") as pool:
            for done in pool.map(self._import_one, archives):
                if progress:
                    progress(f"imported {done.name}")

    def _import_in_background(self, archives: list[Path]) -> None:
        if archives:
            self._imports = ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="homeci-import")
            self._pending = {a: self._imports.submit(self._import_one, a) for a in archives}

    def _wait_imports(self, archives: Iterable[Path]) -> None:
        """Wait for the background imports of ``archives`` (a failed one raises); once none is left, the
        import threads end."""
        try:
            for archive in archives:
                future = self._pending.pop(archive, None)
                if future is not None:
                    future.result()
        finally:
            if not self._pending:
                self._finish_imports()

    def _finish_imports(self, *, cancel: bool = False) -> None:
        """Wait for every background import (no ``ctr`` runs when this returns); the first failure is
        raised unless ``cancel`` (then queued ones are dropped)."""
        pool, pending = self._imports, self._pending
        self._imports, self._pending = None, {}
        if pool is None:
            return
        try:
            if not cancel:
                for future in pending.values():
                    future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def images(self) -> list[str]:
        return [ln.split()[0] for ln in self._ctr("images", "list", "-q").stdout.splitlines() if ln.strip()]

    def image_digests(self) -> dict[str, str]:
        """Reference -> the digest of what the node's containerd holds under it."""
        rows = (ln.split() for ln in self._ctr("images", "list").stdout.splitlines()[1:])
        return {row[0]: row[2] for row in rows if len(row) > 2}

    def load_images(self, refs: list[str], progress: Progress | None = None) -> list[str]:
        """Build ``refs`` from source (cached) and import into the node's containerd those it does not
        hold with the archive's content (those a :meth:`preload` is importing are waited for first)."""
        from homeci import images

        if not self.layout.containerd_socket.exists():
            raise HomeciError(f"{self.describe()} is not running: run `homeci cluster up --provider netns "
                              f"--no-stack --name {self.name}`")
        archives = images.build(refs, progress)
        self._wait_imports(archives.values())
        held = self.image_digests()
        self._import(biggest_first(lacking(archives, held)), progress)
        loaded = set(self.images())
        absent = [images.normalize(r) for r in refs if images.normalize(r) not in loaded]
        if absent:
            raise HomeciError(f"image {absent[0]} is not in the node's containerd after the import: run "
                              f"`homeci cluster images load --provider netns {absent[0]}` and check its "
                              "archive")
        return sorted(loaded)

    def _apply_addons(self) -> None:
        _, coredns_image = cluster_images()
        traefik = addons.traefik_service(contract.RELEASE, contract.NAMESPACE)
        api = self.api()
        kubeaccess.apply(api, addons.coredns_objects(image=coredns_image, domain=self._domain,
                                                     traefik_service=traefik, service_ip=L.DNS_SERVICE_IP))
        addons.apply_storage(api, pool=self.name, volumes={self.layout.node_name: str(self.layout.volumes)})

    def _wait_ready(self, *, timeout: float, progress: Progress | None) -> None:
        from kubernetes import client

        self.sandbox.check_alive("kubelet", "containerd", "kube-controller-manager", "kube-scheduler")
        super()._wait_ready(timeout=timeout, progress=progress)
        core, apps = client.CoreV1Api(self.api()), client.AppsV1Api(self.api())

        def dns() -> str | None:
            self.sandbox.check_alive("kubelet", "containerd")
            d = apps.read_namespaced_deployment(addons.COREDNS, "kube-system")
            if (d.status.ready_replicas or 0) >= 1:
                return None
            for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items:
                for cs in p.status.container_statuses or []:
                    w = cs.state.waiting if cs.state else None
                    if w and w.reason in ("ErrImageNeverPull", "ErrImagePull", "CrashLoopBackOff",
                                          "CreateContainerConfigError", "CreateContainerError"):
                        return f"{w.reason}: {(w.message or '')[:150]}"
            return "CoreDNS not Ready"

        kubeaccess.wait_for("CoreDNS", dns, timeout=timeout, progress=progress, interval=0.25)

    # -- public names --------------------------------------------------------------------------------

    def _reuse(self, progress: Progress | None) -> None:
        self.recycle_volumes()
        self._publish_names(progress)

    def publish(self, *, release: str, namespace: str, progress: Progress | None = None) -> None:
        self.recycle_volumes()
        self._publish_names(progress, release=release, namespace=namespace)

    def _publish_names(self, progress: Progress | None, *, release: str = contract.RELEASE,
                       namespace: str = contract.NAMESPACE) -> None:
        """Point the node's /etc/hosts and the forwarder's https port at Traefik's ClusterIP (if
        installed). Pods need nothing: CoreDNS rewrites ``*.<domain>`` to the Traefik Service."""
        from homeci.cluster.install import traefik_ip

        ip = traefik_ip(self.api(), release, namespace)
        self.sandbox.inside("/etc/hosts").write_text(self._hosts_file(ip))
        if ip:
            self.sandbox.forward(https=f"{ip}:443")
            if progress:
                progress(f"public names -> Traefik {ip}")

    def recycle_volumes(self) -> list[str]:
        def empty(node: str, path: str) -> None:
            if self.dir in Path(path).parents:
                addons.empty_local_folder(path)

        return addons.recycle_volumes(self.api(), self.name, empty)

    def values(self) -> dict[str, Any]:
        """Umbrella values this cluster needs. Traefik's Service is a ClusterIP: there is no
        LoadBalancer controller, and nothing outside the namespace could reach a node port anyway —
        the host comes in through the forwarder, pods through CoreDNS's rewrite, containerd through
        the holder's /etc/hosts, all to that one ClusterIP."""
        return {"global": {"domain": self._domain}, "traefik": {"service": {"type": "ClusterIP"}}}

    # -- down ----------------------------------------------------------------------------------------

    def down(self, *, keep_logs: bool = False, keep_images: bool = False) -> bool:
        """Stop everything and delete the state directory (but its ``logs`` with ``keep_logs``, after a
        failed start, so the error's log path stays valid); False if there was no cluster. Image imports
        still running in the background end first (queued ones are dropped). With ``keep_images`` (and a
        running containerd), the node's image store is kept for the next new node: :meth:`_keeping_images`."""
        self._finish_imports(cancel=True)
        if not self.dir.exists():
            return False
        self.not_kept = []
        keep = keep_images and not keep_logs
        if keep and "containerd" not in self.pids():
            keep = False
            self.not_kept.append("the cluster was stopped: no containerd to empty it with")
        self.sandbox.destroy(self._keeping_images(self.not_kept) if keep else TEARDOWN, keep_logs=keep_logs)
        return True

    # -- the image store a `down` keeps ----------------------------------------------------------------

    def _keeping_images(self, why_not: list[str]) -> tuple[Phase, ...]:
        """:data:`TEARDOWN`, keeping containerd's root in :attr:`Layout.kept_images` (replacing the one kept
        before): once the kubelet has stopped, each task (killed), container and sandbox is removed through
        containerd and the images homeci does not build are deleted; once containerd has stopped too, its
        root is moved there. Anything failing keeps nothing (the root goes with the state directory) and
        says why in ``why_not``."""

        def empty() -> None:
            try:
                left = self._only_images()
            except (HomeciError, OSError, subprocess.SubprocessError) as exc:
                why_not.append(f"emptying containerd failed: {exc}")
            else:
                if left:
                    why_not.append(f"containerd still holds {left}")

        def keep() -> None:
            if not why_not and "containerd" in self.sandbox.pids():
                why_not.append("containerd did not stop")
            if not why_not:
                try:
                    self._keep_store()
                except OSError as exc:
                    why_not.append(f"moving containerd's root failed: {exc}")

        kubelet, daemons = TEARDOWN
        # the containers are removed through their shims while those run, before the cgroup kill
        return (Phase(kubelet.names, timeout=kubelet.timeout, then=empty), replace(kubelet, names=()),
                replace(daemons, then=keep))

    def _only_images(self) -> str:
        """Remove every task, container and sandbox (the kubelet is stopped) and every image no recipe
        builds (with its image-ID name); what is left besides images ("" if nothing)."""
        from homeci.images import RECIPES

        def listed(*args: str, header: bool = False) -> list[str]:
            lines = [ln for ln in self._ctr(*args, timeout=60).stdout.splitlines() if ln.strip()]
            return [ln.split()[0] for ln in lines[1 if header else 0:]]

        # each step goes as far as it can (one task whose shim is gone fails its command); the listing at
        # the end decides
        for kind, remove in (("tasks", ("rm", "-f")), ("containers", ("rm",))):
            found = listed(kind, "ls", "-q")
            if found:
                self._ctr(kind, *remove, *found, timeout=120, check=False)
        sandboxes = listed("sandboxes", "ls", header=True)
        if sandboxes:
            self._ctr("sandboxes", "rm", "-f", *sandboxes, timeout=120, check=False)
        held = self.image_digests()
        built = {r.ref for r in RECIPES}
        kept = {digest for ref, digest in held.items() if ref in built}
        drop = [ref for ref, digest in held.items()
                if ref not in built and not (ref.startswith("sha256:") and digest in kept)]
        if drop:
            self._ctr("images", "rm", "--sync", *drop, timeout=120, check=False)
        left = {"containers": listed("containers", "ls", "-q"),
                "sandboxes": listed("sandboxes", "ls", header=True)}
        return "; ".join(f"{len(ids)} {kind} ({', '.join(i[:12] for i in ids[:3])})"
                         for kind, ids in left.items() if ids)

    def _keep_store(self) -> None:
        root, kept = self.layout.containerd_root, self.layout.kept_images
        old = kept.with_name(f"{kept.name}.old-{os.getpid()}")
        try:
            if kept.exists():
                kept.rename(old)
            root.rename(kept)
        finally:
            shutil.rmtree(old, ignore_errors=True)

    def _adopt_kept_images(self) -> bool:
        """A new node starts with the image store a `down` kept, if there is one (another node starting at
        the same moment may take it first); True if it did."""
        root, kept = self.layout.containerd_root, self.layout.kept_images
        if root.exists() or not kept.is_dir():
            return False
        try:
            kept.rename(root)
        except OSError:
            return False
        return True

    def leftovers(self) -> list[str]:
        return self.sandbox.leftovers()
