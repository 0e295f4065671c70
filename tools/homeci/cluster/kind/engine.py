"""The Docker engine kind runs on: the machine's own where one answers, else one homeci runs contained.

The contained engine is Debian's ``docker.io`` with its ``containerd``, ``runc``, ``tini`` and
``iptables`` (:data:`PACKAGES`), fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``
into the cache — never installed, nothing on the host's PATH or in /etc. containerd and dockerd run in a
:class:`~homeci.cluster.sandbox.box.Sandbox` (own network and mount namespaces, the cgroup parent,
``/etc``, ``/run``, ``/var/lib`` and ``/usr/lib`` private), so Docker's bridges, iptables rules, key file,
plugin and shim sockets and kind's ``/lib/modules`` mount source all stay inside; the host reaches the
API server and the stack through the sandbox's forwarder on 127.0.0.1. What was needed to make it work
here (../shared/research/kind-here.md): the cgroup hierarchies remounted inside (the sandbox's holder
does it), and a runtime wrapper as dockerd's default runtime that drops CAP_SYS_RESOURCE (absent from
this VM's bounding set, while Docker 20.10 asks privileged containers for every capability).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from homeci.cluster.sandbox.box import Phase, Sandbox
from homeci.errors import HomeciError
from homeci.paths import cache_dir

Progress = Callable[[str], None]

# Debian 12's Docker Engine and what it runs; iptables' libraries so a host without iptables works too.
PACKAGES = ("docker.io", "containerd", "runc", "tini", "iptables", "libip4tc2", "libip6tc2", "libxtables12",
            "libnftnl11", "libnetfilter-conntrack3", "libnfnetlink0", "libmnl0")
# Programs the engine needs, relative to its root.
PROGRAMS = ("usr/sbin/dockerd", "usr/bin/docker", "usr/bin/containerd", "usr/sbin/runc",
            "usr/sbin/docker-proxy",
            "usr/bin/containerd-shim-runc-v2", "usr/sbin/xtables-nft-multi")
# Docker calls these by name; they all go to the nft backend of the unpacked iptables.
IPTABLES_LINKS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                  "ip6tables-restore")
TEARDOWN = (Phase(("dockerd",), "docker", timeout=10), Phase(("containerd",), None, timeout=5))
WRAPPER = Path(__file__).resolve().parent / "runtime_wrapper.py"


def host_docker_answers() -> bool:
    """A Docker engine answers on this machine (a ``docker`` client alone is not enough)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- the unpacked packages --------------------------------------------------------------------------


def _key() -> str:
    data = json.dumps({"packages": PACKAGES, "links": IPTABLES_LINKS}).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def engine_root() -> Path:
    """Where the unpacked packages live (shared by every kind cluster of this user)."""
    return cache_dir() / "kind" / f"engine-{_key()}"


def installed() -> dict[str, str] | None:
    """Package -> version of the unpacked engine, None when it is not there (or incomplete)."""
    root = engine_root()
    try:
        info: dict[str, str] = json.loads((root / "packages.json").read_text())
    except (OSError, ValueError):
        return None
    return info if all((root / p).is_file() for p in PROGRAMS) else None


def ensure(progress: Progress | None = None) -> Path:
    """The engine's root, fetched with apt-get download and unpacked the first time (~65 MB)."""
    if installed() is not None:
        return engine_root()
    root = engine_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homeci-engine-", dir=root.parent) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        debs = work / "debs"
        debs.mkdir()
        if _has_user("_apt"):  # apt downloads as _apt: it must be able to write the folder
            shutil.chown(debs, user="_apt")
        if progress:
            progress(f"apt-get download {' '.join(PACKAGES)}")
        _run(["apt-get", "download", *PACKAGES], cwd=debs,
             what="apt-get download (the Docker engine packages)")
        unpacked = work / "root"
        versions: dict[str, str] = {}
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], cwd=work, what=f"dpkg-deb -x {deb.name}")
            fields = _run(["dpkg-deb", "-f", str(deb), "Package", "Version"], cwd=work, what="dpkg-deb -f")
            parsed = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
            versions[parsed.get("Package", deb.name)] = parsed.get("Version", "?")
        links = unpacked / "usr" / "local" / "sbin"
        links.mkdir(parents=True, exist_ok=True)
        for name in IPTABLES_LINKS:
            (links / name).symlink_to("../../sbin/xtables-nft-multi")
        (unpacked / "packages.json").write_text(json.dumps(versions, indent=1, sort_keys=True))
        missing = _missing_libraries(unpacked)
        if missing:
            raise HomeciError(f"the Docker engine needs shared libraries this host lacks "
                              f"({', '.join(missing)}): apt-get install -y libsystemd0 libdevmapper1.02.1 "
                              "libseccomp2")
        if root.exists():
            shutil.rmtree(root)
        os.replace(unpacked, root)
    return root


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _missing_libraries(root: Path) -> list[str]:
    env = environment(root)
    out: list[str] = []
    for program in ("usr/sbin/dockerd", "usr/sbin/runc", "usr/sbin/xtables-nft-multi"):
        proc = subprocess.run(["ldd", str(root / program)], capture_output=True, text=True, env=env,
                              check=False)
        out += [line.split()[0] for line in proc.stdout.splitlines() if "not found" in line]
    return sorted(set(out))


def environment(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH and library paths that make the unpacked engine's programs the ones found first."""
    env = dict(base if base is not None else os.environ)
    first = [root / "usr/local/sbin", root / "usr/sbin", root / "usr/bin"]
    env["PATH"] = ":".join([*(str(p) for p in first), env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
    libs = root / "usr/lib/x86_64-linux-gnu"
    env["LD_LIBRARY_PATH"] = str(libs)
    env["XTABLES_LIBDIR"] = str(libs / "xtables")
    return env


def _run(cmd: list[str], *, cwd: Path, what: str, env: Mapping[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False,
                              env=dict(env) if env is not None else None)
    except OSError as exc:
        raise HomeciError(f"{what}: cannot run {cmd[0]} ({exc.strerror})") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise HomeciError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


# -- the running engine -------------------------------------------------------------------------------


class Engine:
    """containerd + dockerd of one kind cluster, in a sandbox whose state is ``state``."""

    def __init__(self, name: str, state: Path) -> None:
        self.sandbox = Sandbox(f"kind-{name}", state)
        self.state = state

    @property
    def socket(self) -> Path:
        return self.state / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd.sock"

    def docker_env(self) -> dict[str, str]:
        """The environment for ``docker`` and ``kind`` on the host: this engine's client and socket."""
        env = environment(engine_root())
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        env.pop("DOCKER_CONTEXT", None)
        return env

    def running(self) -> bool:
        live = self.sandbox.pids()
        return all(n in live for n in ("holder", "forwarder", "containerd", "dockerd")) and self._answers()

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], env=self.docker_env(),
                                  capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0

    def start(self, *, ports: Mapping[str, tuple[int, ...]], targets: Mapping[str, str],
              progress: Progress | None = None) -> dict[str, int]:
        """Start the sandbox, containerd and dockerd; the host ports the forwarder took."""
        root = ensure(progress)
        if progress:
            progress("network and mount namespace (holder), forwarder on 127.0.0.1")
        chosen = self.sandbox.create(ports=ports, targets=targets, hosts="127.0.0.1 localhost\n",
                                     overlays=("/etc", "/usr/lib"), mkdirs=("/usr/lib/modules",))
        parent = self.sandbox.parent
        assert parent is not None
        bindir = self.state / "bin"
        bindir.mkdir()
        wrapper = bindir / "homeci-runc"
        wrapper.write_text(f"#!{sys.executable}\n" + WRAPPER.read_text().replace(
            'REAL_RUNC = "runc"', f'REAL_RUNC = "{root / "usr/sbin/runc"}"'))
        wrapper.chmod(0o755)
        (self.state / "containerd.toml").write_text(self._containerd_toml())
        daemon = self._daemon_json(parent, wrapper, root)
        (self.state / "daemon.json").write_text(json.dumps(daemon, indent=2))
        env = environment(root)
        if progress:
            progress("containerd and dockerd (Debian's Docker Engine, contained)")
        self.sandbox.start("containerd", [str(root / "usr/bin/containerd"), "--config",
                                          str(self.state / "containerd.toml")], env=env)
        self._wait(lambda: self.containerd_socket.exists(), "containerd", 60)
        self.sandbox.start("dockerd", [
            str(root / "usr/sbin/dockerd"), "--config-file", str(self.state / "daemon.json"),
            "--data-root", str(self.state / "docker"), "-H", f"unix://{self.socket}",
            "--containerd", str(self.containerd_socket), "--pidfile", str(self.state / "dockerd.pid"),
        ], env=env)
        self._wait(self._answers, "dockerd", 120)
        return chosen

    def _wait(self, ready: Callable[[], bool], name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sandbox.check_alive(name)
            if ready():
                return
            time.sleep(0.25)
        raise HomeciError(f"{name} not ready after {timeout:.0f}s: {self.sandbox.log_tail(name)}")

    def _containerd_toml(self) -> str:
        """containerd 1.6 (Debian's) for dockerd only: everything under the state dir, no CRI."""
        s = self.state
        return f"""version = 2
root = "{s / 'containerd'}"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{s / 'containerd' / 'opt'}"
"""

    @staticmethod
    def _daemon_json(parent: str, wrapper: Path, root: Path) -> dict[str, object]:
        return {
            # the wrapper drops CAP_SYS_RESOURCE, then runs Debian's runc (kind-here.md trap 2)
            "runtimes": {"homeci-runc": {"path": str(wrapper)}},
            "default-runtime": "homeci-runc",
            "storage-driver": "overlay2",
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": f"{parent}/docker",
            "userland-proxy-path": str(root / "usr/sbin/docker-proxy"),
            "bridge": "none",
            "iptables": True,
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "2"},
            "features": {"buildkit": False},
        }

    def stop(self, *, keep_logs: bool = False) -> None:
        """Stop dockerd (its containers), containerd and the sandbox, and remove their state."""
        self.sandbox.destroy(TEARDOWN, keep_logs=keep_logs)

    def docker(self, *args: str, timeout: float = 300, check: bool = True,
               stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(["docker", *args], env=self.docker_env(), capture_output=True, timeout=timeout,
                              check=False, input=stdin)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).decode(errors="replace").strip()[-300:]
            raise HomeciError(f"docker {' '.join(args[:3])} failed (exit {proc.returncode}): {tail}")
        return proc
