"""OS layers from Debian packages: ``debootstrap --variant=minbase`` of a pinned release, cached.

A *flavor* is a set of packages installed on top of a release's minbase (bookworm, except the Python
base: trixie, for Python 3.13). Each flavor's root file system is built
once, trimmed (docs, man pages, apt lists and caches, device nodes), and cached as a directory plus the
list of installed package versions (recorded in the images' labels). Images that need the same flavor
share it, so their OS layer has the same digest and is stored once by containerd.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homeci.errors import HomeciError
from homeci.paths import cache_dir

RELEASE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bumped when the way a root file system is made or trimmed changes (a new digest rebuilds the cache).
FORMAT = "2"


@dataclass(frozen=True)
class Flavor:
    """A Debian release's minbase plus ``packages``."""

    packages: tuple[str, ...]
    release: str = RELEASE


# Keep this list short: every flavor costs a debootstrap run (~30-60 s) and its own OS layer.
FLAVORS: dict[str, Flavor] = {
    # A shell, coreutils, glibc and the CA bundle: drone-server (cgo), the small shell base; its CA
    # bundle also goes into the Go images.
    "base": Flavor(("ca-certificates",)),
    # git, curl and ssh-keygen: Gogs (its start script probes with curl; its built-in SSH server makes
    # host keys with ssh-keygen).
    "git": Flavor(("ca-certificates", "curl", "git", "openssh-client")),
    # The Drone clone image (upstream: git, curl, openssh and sudo): its script runs as `drone` and takes
    # the root-owned workspace volume with `sudo chown` before cloning.
    "clone": Flavor(("ca-certificates", "curl", "git", "openssh-client", "sudo")),
    # The Python base for the charts' stdlib-only scripts. Debian 13 (trixie) has Python 3.13, the minor
    # version the charts pin (bookworm's is 3.11).
    "python": Flavor(("ca-certificates", "python3"), "trixie"),
    # kube-proxy on an offline kind node: the iptables tools (upstream: distroless-iptables).
    "netfilter": Flavor(("iptables", "conntrack")),
    # The offline kind node image: systemd as PID 1 and what kubelet, kubeadm and containerd call.
    "kindnode": Flavor(("systemd", "iptables", "iproute2", "kmod", "libseccomp2", "procps",
                        "ca-certificates")),
}

# Left out of every OS layer: documentation and caches nobody in a container reads.
TRIM = ("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/lintian", "/usr/share/locale",
        "/var/cache/apt", "/var/cache/debconf/templates.dat-old", "/var/lib/apt/lists", "/var/log",
        "/var/cache/ldconfig/aux-cache", "/etc/machine-id", "/dev", "/proc", "/sys", "/run",
        "/debootstrap")
# Written by debootstrap from the build machine (its name, its resolver): left empty, as mount points
# for what the container runtime provides.
BLANK = ("/etc/hostname", "/etc/resolv.conf", "/etc/hosts")


@dataclass(frozen=True)
class RootFS:
    flavor: str
    path: Path  # the root directory
    packages: dict[str, str]  # package -> version
    key: str  # digest of what shaped it (release, packages, format)

    def summary(self) -> str:
        """`name=version` of the flavor's own packages (the rest is minbase of the release)."""
        f = FLAVORS[self.flavor]
        versions = ", ".join(f"{p}={self.packages.get(p, '?')}" for p in f.packages)
        return f"debian {f.release} minbase + {versions}"


def flavor_key(flavor: str) -> str:
    if flavor not in FLAVORS:
        raise HomeciError(f"unknown Debian flavor {flavor!r}: known are {', '.join(sorted(FLAVORS))}")
    f = FLAVORS[flavor]
    data = json.dumps({"release": f.release, "packages": sorted(f.packages), "trim": TRIM, "blank": BLANK,
                       "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def mirror(files: list[Path] | None = None) -> str:
    """``$HOMECI_DEBIAN_MIRROR``, else the first Debian mirror in the machine's apt sources (one-line
    ``deb URI suite`` or deb822 ``URIs:``), else deb.debian.org."""
    env = os.environ.get("HOMECI_DEBIAN_MIRROR")
    if env:
        return env
    if files is None:
        files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for uri in re.findall(r"(?m)^\s*(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", text):
            if "security" not in uri and uri.rstrip("/").endswith("/debian"):
                return str(uri)
    return DEFAULT_MIRROR


def _dir(flavor: str) -> Path:
    return cache_dir() / "images" / "debian" / f"{FLAVORS[flavor].release}-{flavor}-{flavor_key(flavor)}"


def cached(flavor: str) -> RootFS | None:
    folder = _dir(flavor)
    try:
        info = json.loads((folder / "packages.json").read_text())
    except (OSError, ValueError):
        return None
    return RootFS(flavor, folder / "rootfs", dict(info), flavor_key(flavor))


def installed_packages(root: Path) -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package}=${Version}\n"],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict(line.split("=", 1) for line in sorted(out.splitlines()) if "=" in line)


def rootfs(flavor: str, *, progress: Callable[[str], None] | None = None) -> RootFS:
    """The cached root file system of ``flavor``, built with debootstrap on first use."""
    hit = cached(flavor)
    if hit:
        return hit
    folder = _dir(flavor)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = cached(flavor)
        if hit:
            return hit
        return _build(flavor, folder, progress)


def _build(flavor: str, folder: Path, progress: Callable[[str], None] | None) -> RootFS:
    tool = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).is_file()), None)
    if not tool:
        raise HomeciError("debootstrap is not installed: `apt-get install debootstrap` "
                          "(it builds the images' Debian layers)")
    if os.geteuid() != 0:
        raise HomeciError("building a Debian layer needs root (debootstrap chroots): run as root, "
                          "or build the images once as root so the cache holds them")
    if folder.exists():
        shutil.rmtree(folder)
    work = folder.with_name(folder.name + ".work")
    if work.exists():
        shutil.rmtree(work)
    root = work / "rootfs"
    root.mkdir(parents=True)
    release = FLAVORS[flavor].release
    cmd = [tool, "--variant=minbase", f"--include={','.join(FLAVORS[flavor].packages)}", release, str(root),
           mirror()]
    if progress:
        progress(f"debootstrap {flavor}: {' '.join(cmd[1:])}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail, line.rstrip()][-15:]
        if progress:
            progress(line)
    if proc.wait() != 0:
        log = root / "debootstrap" / "debootstrap.log"
        detail = log.read_text()[-1500:] if log.is_file() else "\n".join(tail)
        raise HomeciError(f"debootstrap of {release} ({flavor}) failed; last output:\n{detail}")
    packages = installed_packages(root)
    for rel in TRIM:
        target = root / rel.lstrip("/")
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
    for keep in ("dev", "proc", "sys", "run", "var/log"):  # empty mount points and log dir stay
        (root / keep).mkdir(exist_ok=True)
    for rel in BLANK:
        target = root / rel.lstrip("/")
        if target.is_symlink():
            target.unlink()
        target.write_text("")
    (work / "packages.json").write_text(json.dumps(packages, indent=1, sort_keys=True))
    os.replace(work, folder)
    for old in folder.parent.glob(f"*-{flavor}-*"):  # earlier recipes of this flavor
        if old != folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return RootFS(flavor, folder / "rootfs", packages, flavor_key(flavor))
