"""The simulated cluster: the real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
scheduler) run by ``kwokctl --runtime binary`` from the homeci toolchain, with kwok playing the nodes.

State lives in ``<cache>/clusters`` (``KWOK_WORKDIR``): ``clusters/<name>/`` is kwokctl's own
directory (pids, logs, PKI, ``kubeconfig.yaml``). Nothing is downloaded: every binary is given to
kwokctl as a local path (override any of them with the HOMECI_* variables of toolchain/toolchain.toml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from homeci import toolchain
from homeci.cluster import config as kwconfig
from homeci.cluster import kube
from homeci.errors import HomeciError
from homeci.paths import cache_dir

Progress = Callable[[str], None]

DEFAULT_NAME = "homeci"
# The simulated nodes: generous allocatable so the default install's requests always fit.
NODE_NAMES = ("sim-node-1", "sim-node-2")
NODE_ALLOCATABLE = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
STORAGE_CLASS = "standard"
HOSTPATH_ROOT = Path("/tmp/hostpath_pv")
SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"

TOOLS = ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def workdir() -> Path:
    """KWOK_WORKDIR for every simulated cluster (``$HOMECI_SIM_WORKDIR`` overrides)."""
    env = os.environ.get("HOMECI_SIM_WORKDIR")
    return Path(env).expanduser() if env else cache_dir() / "clusters"


def resolve_binaries(*, build: bool = True, progress: Progress | None = None) -> kwconfig.Binaries:
    """Every program the cluster needs, from overrides or the cache (built if ``build``)."""
    paths = {name: toolchain.resolve(name, build=build, progress=progress) for name in TOOLS}
    kubectl: Path | None
    try:
        kubectl = toolchain.resolve("kubectl")
    except HomeciError:
        kubectl = None
    return kwconfig.Binaries(
        kwokctl=paths["kwokctl"], kwok=paths["kwok"], etcd=paths["etcd"],
        kube_apiserver=paths["kube-apiserver"], kube_controller_manager=paths["kube-controller-manager"],
        kube_scheduler=paths["kube-scheduler"], kubectl=kubectl,
    )


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


class SimCluster:
    """One named simulated cluster."""

    def __init__(self, name: str = DEFAULT_NAME, *, root: Path | None = None) -> None:
        if not name or not name.replace("-", "").isalnum() or name != name.lower():
            raise HomeciError(f"cluster name {name!r}: use lower-case letters, digits and dashes")
        self.name = name
        self.root = root or workdir()

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
        """Component name -> pid of its live process (from kwokctl's pid files)."""
        found: dict[str, int] = {}
        piddir = self.dir / "pids"
        if not piddir.is_dir():
            return found
        for f in piddir.glob("*.pid"):
            try:
                pid = int(f.read_text().strip())
            except ValueError:
                continue
            if _alive(pid):
                found[f.stem] = pid
        return found

    def _owned(self, pid: int) -> bool:
        """``pid`` is still one of this cluster's components (guards against pid reuse)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return str(self.dir) in cmdline

    def _kill_leftovers(self, live: dict[str, int]) -> None:
        """Wait for the components to exit; terminate any kwokctl left behind (only our own pids)."""
        live = {name: pid for name, pid in live.items() if self._owned(pid)}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in live.values()):
            time.sleep(0.2)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in live.values():
                if _alive(pid) and self._owned(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_alive(p) for p in live.values()):
                time.sleep(0.2)

    # -- API ---------------------------------------------------------------------------------------

    def api(self) -> Any:
        return kube.api_client(self.kubeconfig)

    def server(self) -> str | None:
        if not self.kubeconfig.is_file():
            return None
        import yaml

        data = yaml.safe_load(self.kubeconfig.read_text()) or {}
        clusters = data.get("clusters") or []
        return str(clusters[0]["cluster"]["server"]) if clusters else None

    def healthy(self) -> bool:
        if not self.kubeconfig.is_file():
            return False
        try:
            api = self.api()
            from kubernetes import client

            client.VersionApi(api).get_code(_request_timeout=3)
            return True
        except Exception:
            return False

    def status(self) -> Status:
        ready, version, nodes = False, None, 0
        if self.exists() and self.healthy():
            from kubernetes import client

            api = self.api()
            version = client.VersionApi(api).get_code().git_version
            items = client.CoreV1Api(api).list_node().items
            nodes = len(items)
            ready = nodes > 0 and all(_node_ready(n) for n in items)
        return Status(self.name, self.exists(), len(self.pids()), ready, self.server(), version, nodes,
                      self.kubeconfig)

    # -- lifecycle ---------------------------------------------------------------------------------

    def up(self, *, timeout: float = 180, progress: Progress | None = None,
           build: bool = True) -> bool:
        """Create and start the cluster and wait until it is ready; False if it was already running.

        A cluster directory that exists but is not healthy is refused with the command that fixes it.
        On any failure, Ctrl-C or SIGTERM during start-up, everything started is torn down again.
        """
        if self.exists():
            if self.healthy():
                self._seed(progress)
                return False
            raise HomeciError(
                f"simulated cluster {self.name!r} exists in {self.dir} but is not running: "
                f"run `homeci cluster sim down --name {self.name}` first, then `up` again"
            )
        binaries = resolve_binaries(build=build, progress=progress)
        kwconfig.write_config(self.config_file, kwconfig.kwokctl_config(
            binaries,
            kube_version=toolchain.tool("kube-apiserver").version,
            etcd_version=toolchain.tool("etcd").version,
            kwok_version=toolchain.tool("kwok").version,
        ))
        with _terminate_as_interrupt():
            try:
                self._create(binaries, timeout=timeout, progress=progress)
                self._seed(progress)
                self._wait_ready(timeout=timeout, progress=progress)
            except BaseException:
                if progress:
                    progress("start-up failed: tearing the cluster down again")
                self.down()
                raise
        return True

    def _create(self, binaries: kwconfig.Binaries, *, timeout: float, progress: Progress | None) -> None:
        cmd = [str(binaries.kwokctl), "create", "cluster", "--name", self.name,
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

    def _seed(self, progress: Progress | None) -> None:
        """Fake nodes and the default StorageClass (idempotent)."""
        kube.wait_for("the API server", lambda: None if self.healthy() else "not answering",
                      timeout=60, progress=progress)
        api = self.api()
        for name in NODE_NAMES:
            kube.apply(api, _node(name))
        kube.apply(api, _storage_class())

    def _wait_ready(self, *, timeout: float, progress: Progress | None) -> None:
        from kubernetes import client

        api = self.api()
        core = client.CoreV1Api(api)

        def nodes_ready() -> str | None:
            items = core.list_node().items
            waiting = [n.metadata.name for n in items if not _node_ready(n)]
            return f"nodes not Ready: {', '.join(waiting)}" if waiting or not items else None

        def default_sa() -> str | None:
            core.read_namespaced_service_account("default", "default")
            return None

        kube.wait_for("simulated nodes", nodes_ready, timeout=timeout, progress=progress)
        kube.wait_for("the controller-manager (default ServiceAccount)", default_sa, timeout=timeout,
                      progress=progress)

    def down(self) -> bool:
        """Stop and delete the cluster; no process or port is left. False if there was none."""
        if not self.exists():
            self.config_file.unlink(missing_ok=True)
            return False
        self._remove_hostpath_volumes()
        live = self.pids()
        kwokctl = _kwokctl_or_none()
        if kwokctl is not None:
            # kwokctl removes the cluster's context from --kubeconfig; it refuses "", so give it a path
            # that does not exist (the user's ~/.kube/config is never touched).
            unused = self.root / f"{self.name}.unused-kubeconfig"
            cmd = [str(kwokctl), "delete", "cluster", "--name", self.name, "--kubeconfig", str(unused)]
            subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=120, check=False)
            unused.unlink(missing_ok=True)
        self._kill_leftovers(live)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.config_file.unlink(missing_ok=True)
        return True

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


def _kwokctl_or_none() -> Path | None:
    try:
        return toolchain.resolve("kwokctl")
    except HomeciError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


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


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt while starting, so cleanup runs (main thread only)."""
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
