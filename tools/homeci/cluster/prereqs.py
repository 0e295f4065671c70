"""Everything a provider needs from this machine, checked before anything is built.

A cold ``up`` builds for many minutes; a missing Debian package found by the last build step (runc's
``Package libseccomp was not found``) would waste all of them. :func:`check` lists what the chosen
provider needs and lacks — the platform, root, namespaces, cgroups, programs and Debian packages, Go and
git when something must be built, a free loopback port, disk space for the caches — and :func:`require`
fails with one line naming each missing thing and the one ``apt-get install`` that fixes the packages.

Every question goes through :class:`Host`, so the unit tests hide one prerequisite at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from homeci import toolchain
from homeci.errors import HomeciError
from homeci.paths import cache_dir

GIB = 1024**3
GO_MINIMUM = (1, 26)

# Host programs -> the Debian package that ships them.
PROGRAMS = {"unshare": "util-linux", "nsenter": "util-linux", "mount": "mount", "ip": "iproute2",
            "iptables": "iptables", "git": "git", "gcc": "gcc", "pkg-config": "pkg-config",
            "debootstrap": "debootstrap", "dpkg-deb": "dpkg", "apt-get": "apt", "dpkg-query": "dpkg"}
# Libraries builds link against (no program to look for): package -> why.
LIBRARIES = {"libseccomp-dev": "runc is built with seccomp (cgo)"}


@dataclass(frozen=True)
class Missing:
    """One unmet prerequisite: what, and how to get it (a Debian package, or a sentence)."""

    what: str
    package: str = ""
    fix: str = ""


class Host:
    """The questions the checks ask about this machine (a test replaces answers one at a time)."""

    def platform(self) -> str:
        return sys.platform

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def which(self, program: str) -> bool:
        return shutil.which(program) is not None or any(
            Path(d, program).is_file() for d in ("/usr/sbin", "/sbin"))

    def package_installed(self, package: str) -> bool:
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True,
                                 text=True, check=False, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return False
        return "install ok installed" in out

    def network_namespaces(self) -> bool:
        return Path("/proc/self/ns/net").exists()

    def cgroups_mounted(self) -> bool:
        try:
            return any(" - cgroup" in line for line in Path("/proc/self/mountinfo").read_text().splitlines())
        except OSError:
            return False

    def go_version(self) -> tuple[int, int] | None:
        go = shutil.which("go")
        if go is None:
            return None
        out = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"go(\d+)\.(\d+)", out)
        return (int(match.group(1)), int(match.group(2))) if match else None

    def free_bytes(self, path: Path) -> int:
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).free

    def loopback_port(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", 0))
            except OSError:
                return False
        return True

    def tool_missing(self, name: str) -> bool:
        return toolchain.status(name)[0] in ("missing", "stale")

    def docker_answers(self) -> bool:
        from homeci.cluster.kind import engine

        return engine.host_docker_answers()


@dataclass(frozen=True)
class Needs:
    """What one provider needs; the lists are checked in this order."""

    linux_root: bool
    programs: tuple[str, ...]
    build_programs: tuple[str, ...]  # only when something must be built
    libraries: tuple[str, ...]  # Debian -dev packages, only when something must be built
    tools: tuple[str, ...]  # toolchain tools it uses (built with Go when missing)
    disk_gib_cold: int


def needs(provider: str, host: Host | None = None) -> Needs:
    from homeci.cluster.tools import IMAGES as image_tools
    from homeci.cluster.tools import NETNS as NODE_TOOLS
    from homeci.cluster.tools import SIM as SIM_TOOLS

    host = host or Host()
    if provider == "sim":
        return Needs(False, (), (), (), (*SIM_TOOLS, "helm3"), 3)
    if provider == "netns":
        return Needs(True, ("unshare", "nsenter", "mount", "ip", "iptables", "git"),
                     ("gcc", "pkg-config", "debootstrap", "dpkg-query"), tuple(LIBRARIES),
                     (*NODE_TOOLS, *image_tools, "helm3"), 12)
    if provider == "kind":
        if host.docker_answers():
            return Needs(False, ("git",), (), (), ("kind", "helm3"), 4)
        return Needs(True, ("unshare", "nsenter", "mount", "ip", "git", "apt-get", "dpkg-deb"),
                     ("gcc", "pkg-config", "debootstrap", "dpkg-query"), tuple(LIBRARIES),
                     (*NODE_TOOLS, *image_tools, "kubeadm", "kind", "helm3"), 18)
    raise HomeciError(f"unknown provider {provider!r}")


def host_problems(provider: str, host: Host | None = None) -> list[str]:
    """Why this host cannot run ``provider`` at all (platform, root, namespaces, cgroups), building aside."""
    host = host or Host()
    need = needs(provider, host)
    out: list[str] = []
    if need.linux_root:
        if host.platform() != "linux":
            return [f"the {provider} provider needs Linux (namespaces, cgroups)"]
        if not host.is_root():
            out.append(f"root: the {provider} provider creates a network namespace, mounts and cgroups "
                       "(run as root)")
        if not host.network_namespaces():
            out.append("network namespaces: this kernel has none")
        if not host.cgroups_mounted():
            out.append("cgroups: none is mounted under /sys/fs/cgroup (mount cgroup v1 or v2)")
    return out


def check(provider: str, *, build: bool = True, host: Host | None = None,
          caches: Iterable[Path] | None = None) -> list[Missing]:
    """Every unmet prerequisite of ``provider`` on this host (empty: go ahead)."""
    host = host or Host()
    need = needs(provider, host)
    out = [Missing(p) for p in host_problems(provider, host)]
    if need.linux_root and host.platform() != "linux":
        return out
    to_build = [t for t in need.tools if host.tool_missing(t)] if build else []
    programs = [*need.programs, *(need.build_programs if to_build else ())]
    for program in dict.fromkeys(programs):
        if not host.which(program):
            out.append(Missing(f"program {program}", package=PROGRAMS.get(program, program)))
    for package in need.libraries if to_build else ():
        if not host.package_installed(package):
            out.append(Missing(f"library {package} ({LIBRARIES[package]})", package=package))
    if to_build:
        version = host.go_version()
        if version is None or version < GO_MINIMUM:
            have = "not installed" if version is None else f"go{version[0]}.{version[1]}"
            out.append(Missing(f"Go >= {GO_MINIMUM[0]}.{GO_MINIMUM[1]} to build {', '.join(to_build[:3])}"
                               f"{' …' if len(to_build) > 3 else ''} ({have})",
                               fix="install Go from https://go.dev/dl (the toolchain builds from the module "
                                   "proxy)"))
    if not host.loopback_port():
        out.append(Missing("a free TCP port on 127.0.0.1", fix="stop something listening there"))
    wanted = (need.disk_gib_cold if to_build else 2) * GIB
    for folder in caches if caches is not None else (cache_dir(),):
        free = host.free_bytes(folder)
        if free < wanted:
            out.append(Missing(f"{wanted // GIB} GiB free for the caches in {folder} (have {free / GIB:.1f})",
                               fix="free disk space or point HOMECI_CACHE elsewhere"))
    return out


def install_command(missing: Iterable[Missing]) -> str:
    """The one command that installs the missing Debian packages ("" when none is)."""
    packages = sorted({m.package for m in missing if m.package})
    return f"apt-get install -y {' '.join(packages)}" if packages else ""


def explain(provider: str, missing: list[Missing]) -> str:
    parts = [m.what + (f" ({m.fix})" if m.fix else "") for m in missing]
    command = install_command(missing)
    tail = f"; install the packages with: {command}" if command else ""
    return f"the {provider} provider cannot start here, missing: {'; '.join(parts)}{tail}"


def require(provider: str, *, build: bool = True, host: Host | None = None) -> None:
    """Raise one line listing every unmet prerequisite of ``provider``, before anything is built."""
    missing = check(provider, build=build, host=host)
    if missing:
        raise HomeciError(explain(provider, missing))
