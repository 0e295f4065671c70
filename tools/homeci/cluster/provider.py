"""The one interface of a cluster provider, and the parts every provider shares.

A provider makes one named cluster on this machine and answers the same questions whatever it is
underneath: :class:`Cluster` (the protocol the command tree, :mod:`homeci.cluster.install` and
:mod:`homeci.flow.setup` use) and :class:`ClusterBase` (the shared lifecycle: prerequisites first,
reuse of a healthy cluster, start-up that tears everything down again on a failure, Ctrl-C or SIGTERM).
Each provider fills in what differs: ``_prepare`` (binaries and images, built before anything starts),
``_create``, ``_wait_ready``, ``down``, ``load_images``, ``publish`` (the node side of the public names)
and ``values`` (what the umbrella needs on it), and for a reboot ``_halt`` and ``_resume``: ``stop`` ends
every process as a machine's power-off does and keeps all state, ``start`` brings the same cluster back.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Protocol

from homeci import kubeaccess
from homeci.errors import HomeciError

Progress = Callable[[str], None]

DEFAULT_NAME = "homeci"
# Not *.localhost: curl (so git) resolves every *.localhost name to the loopback address without asking
# DNS, so in-cluster clones of https://git.<domain>/ would dial the pod itself. `.test` is reserved (RFC
# 6761) and never resolves outside; the host reaches it through a loopback port (Access).
REAL_DOMAIN = "homeci.test"


@dataclass(frozen=True)
class Record:
    """A small JSON file of facts a cluster keeps about itself (how it was made, ports, cgroups), written
    atomically and read by any later process (``status``, ``down`` after a crash)."""

    path: Path

    def read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def update(self, **changes: Any) -> dict[str, Any]:
        data = {**self.read(), **changes}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.path)
        return data

    def exists(self) -> bool:
        return self.path.is_file()


@dataclass
class Status:
    """What ``homeci cluster status`` reports, the same fields for every provider."""

    name: str
    provider: str
    exists: bool
    ready: bool
    server: str | None
    version: str | None
    nodes: int
    kubeconfig: Path
    processes: dict[str, bool] = field(default_factory=dict)  # component -> running
    https: str | None = None  # where this machine reaches the public names, e.g. https://<host>.<domain>:8443
    stopped: bool = False  # stopped with `homeci cluster stop`, state kept: `start` brings it back

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kubeconfig"] = str(self.kubeconfig)
        return data


class Cluster(Protocol):
    """What every provider answers (sim, netns, kind)."""

    @property
    def provider(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def runs_containers(self) -> bool: ...

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def dir(self) -> Path: ...

    def describe(self) -> str: ...

    @property
    def image_source(self) -> str:
        """Where the nodes' images come from: "source" (built by homeci.images and loaded), "upstream"
        (the nodes pull them) or "none" (no container runs)."""

    def build_needs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(toolchain tools, image references) that ``up(build=True)`` builds for this cluster."""

    def exists(self) -> bool: ...

    def healthy(self) -> bool: ...

    def up(self, *, timeout: float = 300, progress: Progress | None = None, build: bool = False) -> bool: ...

    def down(self, *, keep_logs: bool = False, keep_images: bool = False) -> bool: ...

    def stop(self, *, progress: Progress | None = None) -> bool: ...

    def start(self, *, timeout: float = 300, progress: Progress | None = None) -> bool: ...

    def stopped(self) -> bool: ...

    def leftovers(self) -> list[str]: ...

    def status(self) -> Status: ...

    def api(self) -> Any: ...

    def server(self) -> str | None: ...

    def https_port(self) -> int | None: ...

    def domain(self) -> str | None: ...

    def values(self) -> dict[str, Any]: ...

    def load_images(self, refs: list[str], progress: Progress | None = None) -> list[str]: ...

    def preload(self, refs: list[str]) -> None: ...

    def publish(self, *, release: str, namespace: str, progress: Progress | None = None) -> None: ...


class ClusterBase(ABC):
    """The lifecycle every provider shares; subclasses set ``provider`` and fill in the abstract steps."""

    provider: ClassVar[str]
    runs_containers: ClassVar[bool] = True

    def __init__(self, name: str, *, max_length: int = 40) -> None:
        check_name(name, max_length)
        self.name = name

    # -- what each provider says about itself ---------------------------------------------------------

    @property
    @abstractmethod
    def kubeconfig(self) -> Path: ...

    @property
    @abstractmethod
    def dir(self) -> Path:
        """The cluster's state directory."""

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def server(self) -> str | None: ...

    @abstractmethod
    def down(self, *, keep_logs: bool = False, keep_images: bool = False) -> bool:
        """Delete the cluster; ``keep_logs`` (after a failed start) keeps what the error message names;
        ``keep_images``: a provider that can keeps the node's image store for its next new node (netns)."""

    @abstractmethod
    def leftovers(self) -> list[str]: ...

    @abstractmethod
    def _prepare(self, *, build: bool, progress: Progress | None) -> Any:
        """Everything the start needs that can be built (binaries, images): done before anything starts."""

    @abstractmethod
    def _create(self, prepared: Any, *, timeout: float, progress: Progress | None) -> None: ...

    @property
    @abstractmethod
    def _facts(self) -> Record:
        """The record the cluster keeps about itself (``stopped`` among its facts)."""

    @abstractmethod
    def _halt(self, progress: Progress | None) -> None:
        """Every process of the cluster ends (containers first, as a shutdown does); all state stays."""

    @abstractmethod
    def _resume(self, *, timeout: float, progress: Progress | None) -> None:
        """Start a halted cluster from its kept state, up to the nodes Ready and the public names
        answering again."""

    def processes(self) -> dict[str, bool]:
        """Component -> running (providers without processes of their own report none)."""
        return {}

    def build_needs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(toolchain tools, image references) that ``_prepare(build=True)`` builds: what
        :mod:`homeci.cluster.prebuild` builds first, in parallel."""
        return (), ()

    @property
    def image_source(self) -> str:
        return "source" if self.runs_containers else "none"

    def https_port(self) -> int | None:
        """The 127.0.0.1 port that answers for every public name (None: no container answers)."""
        return None

    def domain(self) -> str | None:
        """The domain this cluster resolves to Traefik (None: the chart's default)."""
        return None

    def values(self) -> dict[str, Any]:
        """Umbrella values this cluster needs (given before the user's own)."""
        return {}

    def load_images(self, refs: list[str], progress: Progress | None = None) -> list[str]:
        """Make ``refs`` available to the node(s); the images the nodes hold afterwards."""
        return []

    def preload(self, refs: list[str]) -> None:  # noqa: B027
        """``refs`` will be loaded (:meth:`load_images`) once the cluster is up: a provider that can start
        loading them while its nodes come up does so; by default :meth:`load_images` does all the work."""

    def publish(self, *, release: str, namespace: str, progress: Progress | None = None) -> None:  # noqa: B027
        """The node side of the public names, once the umbrella is installed (registry pulls, the host's
        loopback port); pods need nothing (CoreDNS answers the names). Nothing to do by default."""

    def _reuse(self, progress: Progress | None) -> None:  # noqa: B027
        """A healthy cluster of this name is already running: bring it to the state ``up`` promises
        (nothing to do by default)."""

    def _wait_ready(self, *, timeout: float, progress: Progress | None) -> None:
        """Nodes Ready and the default ServiceAccount made (the controller-manager works)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api())

        def nodes() -> str | None:
            items = core.list_node().items
            waiting = [n.metadata.name for n in items if not kubeaccess.node_ready(n)]
            return f"nodes not Ready: {', '.join(waiting)}" if waiting else None if items else "no node yet"

        def default_sa() -> str | None:
            core.read_namespaced_service_account("default", "default")
            return None

        kubeaccess.wait_for("the nodes", nodes, timeout=timeout, progress=progress)
        kubeaccess.wait_for("the default ServiceAccount", default_sa, timeout=timeout, progress=progress)

    def _abort(self) -> None:
        """A start failed: remove everything but the logs the error message points at."""
        self.down(keep_logs=True)

    # -- shared ----------------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"{self.provider} cluster {self.name!r}"

    def api(self) -> Any:
        return kubeaccess.api_client(self.kubeconfig)

    def up(self, *, timeout: float = 300, progress: Progress | None = None, build: bool = False) -> bool:
        """Create and start the cluster and wait until it is ready; False if a healthy one was reused.

        Prerequisites are checked before anything is built; a cluster that exists but is not healthy is
        refused with the command that fixes it. On any failure, Ctrl-C or SIGTERM during start-up,
        everything started is torn down again."""
        from homeci.cluster import prereqs

        prereqs.require(self.provider, build=build)
        if self.stopped():
            self.start(timeout=timeout, progress=progress)
            self._reuse(progress)
            return False
        if self.exists():
            if self.healthy():
                self._reuse(progress)
                return False
            raise HomeciError(f"{self.describe()} exists in {self.dir} but is not healthy: run "
                              f"`homeci cluster start --provider {self.provider} --name {self.name}` to "
                              "boot it with its state, or `homeci cluster down ...` and `up` for a new one")
        prepared = self._prepare(build=build, progress=progress)
        with terminate_as_interrupt():
            try:
                self._create(prepared, timeout=timeout, progress=progress)
                self._wait_ready(timeout=timeout, progress=progress)
            except BaseException:
                if progress:
                    progress("start-up failed: tearing the cluster down again")
                self._abort()
                raise
        return True

    def stopped(self) -> bool:
        """The cluster was stopped (:meth:`stop`) and not started since: its state waits for :meth:`start`."""
        return self.exists() and bool(self._facts.read().get("stopped"))

    def stop(self, *, progress: Progress | None = None) -> bool:
        """Shut the cluster down as a machine powers off: its workloads get SIGTERM and a grace period,
        then every process ends; etcd's data, the images, certificates, volumes and ports are kept for
        :meth:`start`. False if it was already stopped."""
        if not self.exists():
            raise HomeciError(f"{self.describe()} does not exist: nothing to stop")
        if self.stopped():
            return False
        self._halt(progress)
        self._facts.update(stopped=True)
        return True

    def start(self, *, timeout: float = 300, progress: Progress | None = None) -> bool:
        """Bring a stopped (or crashed) cluster back with its state, as a machine boots: the same nodes,
        objects, images and volumes, every workload restarted by Kubernetes itself. Returns when the nodes
        are Ready and the public names answer again; False if it was running. A failed start stops what
        it started and keeps the state (start again, or ``down`` to delete it)."""
        if not self.exists():
            raise HomeciError(f"{self.describe()} does not exist: run `homeci cluster up --provider "
                              f"{self.provider} --name {self.name}`")
        if self.healthy() and not self.stopped():
            return False
        if not self.stopped():
            self._halt(progress)  # crashed half-way: end what is left before booting
        with terminate_as_interrupt():
            try:
                self._resume(timeout=timeout, progress=progress)
            except BaseException:
                if progress:
                    progress("start failed: stopping again (the state is kept)")
                self._halt(None)
                self._facts.update(stopped=True)
                raise
        self._facts.update(stopped=False)
        return True

    def status(self) -> Status:
        ready, version, nodes = False, None, 0
        exists = self.exists()
        if exists and self.healthy():
            from kubernetes import client

            api = self.api()
            version = client.VersionApi(api).get_code().git_version
            items = client.CoreV1Api(api).list_node().items
            nodes = len(items)
            ready = nodes > 0 and all(kubeaccess.node_ready(n) for n in items)
        port, domain = self.https_port(), self.domain()
        https = f"https://<host>.{domain}:{port}" if exists and port and domain else None
        return Status(self.name, self.provider, exists, ready, self.server(), version, nodes,
                      self.kubeconfig, self.processes() if exists else {}, https, self.stopped())

    def api_answers(self, timeout: float = 3) -> bool:
        """The API server answers /version with this cluster's kubeconfig."""
        if not self.kubeconfig.is_file():
            return False
        try:
            from kubernetes import client

            client.VersionApi(self.api()).get_code(_request_timeout=timeout)
            return True
        except Exception:
            return False


def check_name(name: str, max_length: int = 40) -> None:
    if (not name or not name.replace("-", "").isalnum() or name != name.lower() or len(name) > max_length
            or name.startswith("-") or not name.isascii()):
        raise HomeciError(f"cluster name {name!r}: use up to {max_length} lower-case letters, digits and "
                          "dashes, starting with a letter or digit")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt while starting, so cleanup runs (main thread only)."""
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


def free_port(*preferred: int) -> int:
    """The first of ``preferred`` that is free on 127.0.0.1, else any free port.

    Probed with SO_REUSEADDR, as homeci's listeners bind: connections a stopped listener closed linger in
    TIME_WAIT for a minute, and without it the port of a cluster just stopped would look taken."""
    for port in (*preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise HomeciError("no free TCP port on 127.0.0.1")

