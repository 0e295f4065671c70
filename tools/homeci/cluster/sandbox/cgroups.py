"""The cluster's cgroups: one parent nested in the cgroup homeci itself runs in, in every hierarchy.

cgroup v1 (one mount per controller, ``name=systemd``, maybe a cgroup2 ``unified`` mount) and pure
cgroup v2 are both handled. With the cgroupfs driver kubelet and runc use the *same* relative path in
every hierarchy, so the parent is ``<homeci's own memory cgroup>/homeci-<cluster>`` (v2: its own
cgroup), created — with any missing ancestors — in each hierarchy. Nothing outside that parent and
the ancestors created for it is ever written; ``remove`` deletes exactly those.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from homeci.errors import HomeciError

CGROUP_ROOT = Path("/sys/fs/cgroup")
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")


@dataclass(frozen=True)
class Hierarchy:
    mountpoint: Path
    fstype: str  # cgroup (v1) or cgroup2
    options: str  # v1: the controller list / name=…; v2: ""

    @property
    def v2(self) -> bool:
        return self.fstype == "cgroup2"


def hierarchies() -> list[Hierarchy]:
    """Every cgroup mount under /sys/fs/cgroup, as the current process sees them."""
    found: list[Hierarchy] = []
    seen: set[str] = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        mountpoint = fields[4]
        if not mountpoint.startswith(str(CGROUP_ROOT)) or mountpoint in seen:
            continue
        seen.add(mountpoint)
        opts = ""
        if rfields[0] == "cgroup":
            known = {"rw", "ro", "relatime", "nosuid", "nodev", "noexec", "noatime", "clone_children",
                     "xattr"}
            opts = ",".join(o for o in rfields[2].split(",")
                            if o not in known and not o.startswith("release_agent"))
        found.append(Hierarchy(Path(mountpoint), rfields[0], opts))
    if not found:
        raise HomeciError("no cgroup filesystem is mounted under /sys/fs/cgroup: mount cgroup v1 or v2 first")
    return found


def is_v2_only(hs: list[Hierarchy]) -> bool:
    return all(h.v2 for h in hs) and len(hs) == 1 and hs[0].mountpoint == CGROUP_ROOT


def own_paths() -> dict[str, str]:
    """Key (v1: controller list as in /proc/self/cgroup; v2: "") -> this process's cgroup path."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths


def parent_path(cluster: str) -> str:
    """The relative cgroup path every cgroup of the cluster lives under (kubelet cgroupRoot)."""
    own = own_paths()
    base = own.get("memory") if "memory" in own else own.get("", "/")
    if base is None:
        base = "/"
    return f"{base.rstrip('/')}/homeci-{cluster}"


def _dirs(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def create(hs: list[Hierarchy], parent: str) -> list[str]:
    """Create ``parent`` (and missing ancestors) in every hierarchy; the absolute dirs created."""
    created: list[str] = []
    for h in hs:
        for rel in _dirs(parent):
            d = h.mountpoint / rel.lstrip("/")
            if d.is_dir():
                continue
            d.mkdir()
            created.append(str(d))
            if not h.v2 and "cpuset" in h.options.split(","):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((d.parent / f).read_text())
        if h.v2:
            _enable_v2_controllers(h, parent)
    return created


def _enable_v2_controllers(h: Hierarchy, parent: str) -> None:
    available = set((h.mountpoint / "cgroup.controllers").read_text().split())
    wanted = [c for c in V2_CONTROLLERS if c in available]
    if not wanted:
        return  # a hybrid host's controller-less "unified" mount
    for rel in ["/", *_dirs(parent)]:
        d = h.mountpoint / rel.lstrip("/")
        try:
            (d / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise HomeciError(
                    f"cgroup v2: cannot enable controllers below {d} because it holds processes: run "
                    "homeci where its cgroup's controllers can be delegated (a container's cgroup root, "
                    "or a delegated unit whose processes live in a child cgroup)"
                ) from None
            raise


def join(hs: list[Hierarchy], path: str, pid: int | None = None) -> None:
    """Move ``pid`` (default: the caller) into ``path`` (created if needed) in every hierarchy."""
    who = str(pid if pid is not None else os.getpid())
    for h in hs:
        d = h.mountpoint / path.lstrip("/")
        d.mkdir(exist_ok=True)
        if not h.v2 and "cpuset" in h.options.split(","):
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((d.parent / f).read_text())
        (d / "cgroup.procs").write_text(who)


def pids(hs: list[Hierarchy], parent: str) -> set[int]:
    """Every process in ``parent``'s subtree in any hierarchy."""
    found: set[int] = set()
    for h in hs:
        top = h.mountpoint / parent.lstrip("/")
        if not top.is_dir():
            continue
        for dirpath, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    found.update(int(p) for p in (Path(dirpath) / "cgroup.procs").read_text().split())
    return found


def terminate_all(hs: list[Hierarchy], parent: str, *, grace: float) -> None:
    """SIGTERM every process in the subtree and wait up to ``grace`` seconds for them to exit (what is
    left is the caller's to :func:`kill_all`)."""
    for pid in pids(hs, parent):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids(hs, parent) and time.monotonic() < deadline:
        time.sleep(0.2)


def kill_all(hs: list[Hierarchy], parent: str, timeout: float = 15) -> None:
    """SIGKILL every process in the subtree until it is empty (or raise after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        live = pids(hs, parent)
        if not live:
            return
        if time.monotonic() > deadline:
            raise HomeciError(f"processes {sorted(live)} survive SIGKILL in cgroup {parent}: check "
                              "`cat /proc/<pid>/status` (a frozen cgroup or an uninterruptible sleep)")
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove(hs: list[Hierarchy], parent: str, created: list[str]) -> list[str]:
    """rmdir the subtree bottom-up in every hierarchy, then the ancestors we created; what is left."""
    left: list[str] = []
    for h in hs:
        top = h.mountpoint / parent.lstrip("/")
        if not top.is_dir():
            continue
        dirs = [Path(dp) for dp, _, _ in os.walk(top)]
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            _rmdir(d, left)
    for made in sorted(created, key=lambda p: len(Path(p).parts), reverse=True):
        if Path(made).is_dir():
            _rmdir(Path(made), left if Path(made).name.startswith("homeci-") else None)
    return left


def _rmdir(d: Path, left: list[str] | None) -> None:
    for _ in range(20):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise
            if left is None:
                return  # an ancestor someone else now uses as well: keep it
            time.sleep(0.1)
    if left is not None:
        left.append(str(d))


def leftovers(hs: list[Hierarchy], parent: str, created: list[str]) -> list[str]:
    out = [str(h.mountpoint / parent.lstrip("/")) for h in hs
           if (h.mountpoint / parent.lstrip("/")).exists()]
    return out + [d for d in created if Path(d).exists() and d not in out]
