"""Provider ``sim``: the real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
scheduler) run by ``kwokctl --runtime binary`` from the homeci toolchain, with kwok playing the nodes.

State lives in ``<cache>/clusters`` (``KWOK_WORKDIR``): ``clusters/<name>/`` is kwokctl's own
directory (pids, logs, PKI, ``kubeconfig.yaml``). Nothing is downloaded: every binary is given to
kwokctl as a local path (override any of them with the HOMECI_* variables of toolchain/toolchain.toml).
No container runs, so nothing is loaded into the nodes and no public name answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from homeci import kubeaccess, toolchain
from homeci.cluster import tools
from homeci.cluster.provider import ClusterBase, Progress, Record
from homeci.cluster.sandbox import procs
from homeci.cluster.sim import kwokctl
from homeci.errors import HomeciError
from homeci.paths import cache_dir

# The simulated nodes (two by default): generous allocatable so the default install's requests always fit.
NODES = 2
NODE_NAMES = tuple(f"sim-node-{i}" for i in range(1, NODES + 1))
NODE_ALLOCATABLE = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
STORAGE_CLASS = "standard"
HOSTPATH_ROOT = Path("/tmp/hostpath_pv")
SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"

TOOLS = tools.SIM
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")


def workdir() -> Path:
    """KWOK_WORKDIR for every simulated cluster (``$HOMECI_SIM_WORKDIR`` overrides)."""
    env = os.environ.get("HOMECI_SIM_WORKDIR")
    return Path(env).expanduser() if env else cache_dir() / "clusters"


def resolve_binaries(*, build: bool = True, progress: Progress | None = None) -> kwokctl.Binaries:
    """Every program the cluster needs, from overrides or the cache (built if ``build``)."""
    paths = {name: toolchain.resolve(name, build=build, progress=progress) for name in TOOLS}
    kubectl: Path | None
    try:
        kubectl = toolchain.resolve("kubectl")
    except HomeciError:
        kubectl = None
    return kwokctl.Binaries(
        kwokctl=paths["kwokctl"], kwok=paths["kwok"], etcd=paths["etcd"],
        kube_apiserver=paths["kube-apiserver"], kube_controller_manager=paths["kube-controller-manager"],
        kube_scheduler=paths["kube-scheduler"], kubectl=kubectl,
    )


class SimCluster(ClusterBase):
    """One named simulated cluster."""

    provider = "sim"
    runs_containers = False

    def __init__(self, name: str, *, root: Path | None = None, domain: str | None = None,
                 nodes: int | None = None) -> None:
        super().__init__(name)
        self.root = root or workdir()
        # A running cluster keeps the settings it was made with.
        info = self.info()
        self._domain: str | None = info.get("domain", domain)
        self.nodes = int(info.get("nodes") or nodes or NODES)

    @property
    def info_file(self) -> Path:
        return self.root / f"{self.name}.homeci.json"

    @property
    def _facts(self) -> Record:
        return Record(self.info_file)

    def info(self) -> dict[str, Any]:
        return Record(self.info_file).read()

    def domain(self) -> str | None:
        return self._domain

    def values(self) -> dict[str, Any]:
        return {"global": {"domain": self._domain}} if self._domain else {}

    def publish(self, *, release: str, namespace: str, progress: Progress | None = None) -> None:
        """No container runs here, so the certificate hook "succeeded" without writing anything: run its
        program once as the kubelet would (the CA, the serving certificate, ConfigMap <release>-ca)."""
        from homeci.cluster.sim import programs

        if progress:
            progress(f"certificate program of {release} (what its hook Job does on a real node)")
        programs.run_certificates(self.api(), release=release, namespace=namespace)

    def node_names(self) -> list[str]:
        return [f"sim-node-{i}" for i in range(1, self.nodes + 1)]

    # -- where things are ------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.root / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig.yaml"

    @property
    def config_file(self) -> Path:
        return self.root / f"{self.name}.kwokctl.yaml"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.root)
        # Never let kwokctl pick a remote default for anything we did not pass.
        env.pop("KWOK_KUBE_BINARY_PREFIX", None)
        return env

    def exists(self) -> bool:
        return self.dir.is_dir()

    # -- processes -------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Component name -> pid of its live process (from kwokctl's pid files), still this cluster's."""
        return {n: p for n, p in procs.read_pids(self.dir).items()
                if procs.alive(p) and procs.owned(p, str(self.dir))}

    def processes(self) -> dict[str, bool]:
        live = self.pids()
        return {n: n in live for n in sorted({*COMPONENTS, *live})}

    def _kill_leftovers(self, live: dict[str, int]) -> None:
        """Wait for the components to exit; stop any left behind (only our own pids)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(procs.alive(p) for p in live.values()):
            time.sleep(0.2)
        procs.stop(live, marker=str(self.dir), timeout=10)

    # -- API ---------------------------------------------------------------------------------------

    def server(self) -> str | None:
        if not self.kubeconfig.is_file():
            return None
        import yaml

        data = yaml.safe_load(self.kubeconfig.read_text()) or {}
        clusters = data.get("clusters") or []
        return str(clusters[0]["cluster"]["server"]) if clusters else None

    def healthy(self) -> bool:
        return self.api_answers()

    # -- lifecycle ---------------------------------------------------------------------------------

    def build_needs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return TOOLS, ()

    def _prepare(self, *, build: bool, progress: Progress | None) -> kwokctl.Binaries:
        # The simulated cluster always builds what it lacks: a handful of Go binaries, no images.
        binaries = resolve_binaries(build=True, progress=progress)
        kwokctl.write_config(self.config_file, kwokctl.kwokctl_config(
            binaries,
            kube_version=toolchain.tool("kube-apiserver").version,
            etcd_version=toolchain.tool("etcd").version,
            kwok_version=toolchain.tool("kwok").version,
        ))
        return binaries

    def _reuse(self, progress: Progress | None) -> None:
        self._seed(progress)

    def _create(self, prepared: kwokctl.Binaries, *, timeout: float, progress: Progress | None) -> None:
        Record(self.info_file).update(domain=self._domain, nodes=self.nodes)
        # kwokctl picks its components' ports as free ones, and two clusters created at the same moment
        # (two pytest workers, two shells) can pick the same: one creation at a time on this machine, each
        # until its API server answers.
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".create.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if progress:
                    progress("waiting for another simulated cluster's creation to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._create_locked(prepared, timeout=timeout, progress=progress)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _create_locked(self, prepared: kwokctl.Binaries, *, timeout: float,
                       progress: Progress | None) -> None:
        cmd = [str(prepared.kwokctl), "create", "cluster", "--name", self.name,
               "--config", str(self.config_file), "--kubeconfig", "", "--timeout", f"{int(timeout)}s"]
        lines: list[str] = []
        with subprocess.Popen(cmd, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True) as proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    lines.append(line.rstrip())
                    if progress:
                        progress(line.rstrip())
                rc = proc.wait()
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise
        if rc != 0:
            tail = " | ".join(ln for ln in lines[-6:] if ln)
            raise HomeciError(f"kwokctl create cluster {self.name} failed (exit {rc}): {tail}; "
                              f"logs in {self.dir / 'logs'}")
        self._seed(progress)

    def _seed(self, progress: Progress | None) -> None:
        """Fake nodes and the default StorageClass (idempotent)."""
        kubeaccess.wait_for("the API server", lambda: None if self.healthy() else "not answering",
                            timeout=60, progress=progress)
        kubeaccess.create(self.api(), [*(_node(name) for name in self.node_names()), _storage_class()])

    def _kwokctl(self, *args: str, timeout: float = 300) -> None:
        kwokctl_bin = toolchain.resolve("kwokctl")
        cmd = [str(kwokctl_bin), *args, "--name", self.name]
        proc = subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=timeout,
                              check=False)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
            raise HomeciError(f"kwokctl {' '.join(args)} --name {self.name} failed (exit {proc.returncode}): "
                              f"{tail}; logs in {self.dir / 'logs'}")

    def _halt(self, progress: Progress | None) -> None:
        """``kwokctl stop cluster``: every component stops, etcd's data and the PKI stay."""
        live = self.pids()
        if progress:
            progress("kwokctl stop cluster")
        if live:
            self._kwokctl("stop", "cluster")
        self._kill_leftovers(live)

    def _resume(self, *, timeout: float, progress: Progress | None) -> None:
        """``kwokctl start cluster``: the same components on the same ports and data."""
        if progress:
            progress("kwokctl start cluster")
        self._kwokctl("start", "cluster", "--timeout", f"{int(timeout)}s", timeout=timeout + 60)
        kubeaccess.wait_for("the API server", lambda: None if self.healthy() else "not answering",
                            timeout=timeout, progress=progress)
        self._wait_ready(timeout=timeout, progress=progress)

    def down(self, *, keep_logs: bool = False, keep_images: bool = False) -> bool:
        """Stop and delete the cluster; no process or port is left (kwokctl's logs go too: a failed
        start names its last lines). False if there was none."""
        if not self.exists():
            self.config_file.unlink(missing_ok=True)
            self.info_file.unlink(missing_ok=True)
            return False
        self._remove_hostpath_volumes()
        live = self.pids()
        kwokctl_bin = _kwokctl_or_none()
        if kwokctl_bin is not None:
            # kwokctl removes the cluster's context from --kubeconfig; it refuses "", so give it a path
            # that does not exist (the user's ~/.kube/config is never touched).
            unused = self.root / f"{self.name}.unused-kubeconfig"
            cmd = [str(kwokctl_bin), "delete", "cluster", "--name", self.name, "--kubeconfig", str(unused)]
            subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=120, check=False)
            unused.unlink(missing_ok=True)
        self._kill_leftovers(live)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.config_file.unlink(missing_ok=True)
        self.info_file.unlink(missing_ok=True)
        return True

    def leftovers(self) -> list[str]:
        out = [f"process {p}" for p in _processes_mentioning(str(self.dir))]
        if self.dir.exists():
            out.append(f"directory {self.dir}")
        out += [f"file {f}" for f in (self.config_file, self.info_file) if f.exists()]
        return out

    def _remove_hostpath_volumes(self) -> None:
        """Delete the /tmp/hostpath_pv directories of this cluster's provisioned volumes."""
        if not self.healthy():
            return
        from kubernetes import client

        try:
            pvs = client.CoreV1Api(self.api()).list_persistent_volume().items
        except Exception:
            return
        for pv in pvs:
            path = pv.spec.host_path.path if pv.spec and pv.spec.host_path else None
            if path and Path(path).parent == HOSTPATH_ROOT:
                shutil.rmtree(path, ignore_errors=True)


def _processes_mentioning(marker: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != os.getpid() and procs.owned(int(p.name), marker)]


def _kwokctl_or_none() -> Path | None:
    try:
        return toolchain.resolve("kwokctl")
    except HomeciError:
        return None


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {SIMULATED_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/agent": "",
                "homeci.dev/simulated": "true",
            },
        },
        "status": {"allocatable": NODE_ALLOCATABLE, "capacity": NODE_ALLOCATABLE},
    }


def _storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
