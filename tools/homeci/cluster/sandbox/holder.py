"""The holder: a long-lived process owning a sandbox's network and mount namespaces.

Started as ``unshare --net --mount --propagation slave -- python holder.py <plan.json>`` (stdlib only);
every daemon joins it with ``nsenter -t <holder> -m -n``. Inside its mount namespace:

* a fresh sysfs (the new network namespace's view) and the host's cgroup hierarchies remounted below
  it (same hierarchies, so the host's limits apply);
* ``/run``, ``/var/lib`` and ``/var/log`` bound from the state directory, and ``/etc`` (plus the plan's
  other ``overlays``, e.g. ``/usr/lib`` for the kind engine's ``/lib/modules``) overlays whose writes land
  in the state directory (``/etc/hosts``, ``/etc/containerd/certs.d``, ``/etc/docker``) — nothing a daemon
  or a hostPath volume writes reaches the host's files;
* files with the host's current values bound over the ``/proc/sys`` entries kubelet would rewrite
  host-wide (``vm.overcommit_memory``, ``kernel.panic``, …).

Inside its network namespace: ``lo`` and, for the real node (plan ``network``), an empty bridge
carrying the node IP and a route for the Service CIDR through it; never a default route — nothing
leaves the machine. The holder writes ``ready`` (or
``error: …``) into its status file, then sleeps until SIGTERM; when it and the daemons are gone, the
namespaces and every mount in them vanish with them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# kubelet sets these host-wide (they are not per network namespace); the holder pins them.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")


def _mount_cgroups(plan: dict[str, Any]) -> None:
    _run("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev,noexec", "cgroup-root", "/sys/fs/cgroup")
    for h in plan["hierarchies"]:
        mp = Path(h["mountpoint"])
        if mp != Path("/sys/fs/cgroup"):
            mp.mkdir(parents=True, exist_ok=True)
        if h["fstype"] == "cgroup2":
            _run("mount", "-t", "cgroup2", "-o", "nosuid,nodev,noexec", "cgroup2", str(mp))
        else:
            _run("mount", "-t", "cgroup", "-o", f"nosuid,nodev,noexec,{h['options']}", "cgroup", str(mp))


def _mount_fs(plan: dict[str, Any]) -> None:
    fs = Path(plan["fs"])
    for target in ("/run", "/var/lib", "/var/log"):
        src = fs / target.strip("/").replace("/", "-")
        src.mkdir(parents=True, exist_ok=True)
        _run("mount", "--bind", str(src), target)
    for target in plan.get("overlays", ["/etc"]):
        slug = target.strip("/").replace("/", "-")
        upper, work = fs / f"{slug}-upper", fs / f"{slug}-work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={target},upperdir={upper},workdir={work}",
             target)
    for folder in plan.get("mkdirs", []):
        Path(folder).mkdir(parents=True, exist_ok=True)
    Path("/etc/hosts").write_text(plan["hosts"])
    resolv = Path("/etc/resolv.conf")
    if resolv.is_symlink():
        resolv.unlink()
    resolv.write_text("# homeci sandbox: no nameserver, nothing resolves outside /etc/hosts\n")
    sysctl_dir = fs / "sysctl"
    sysctl_dir.mkdir(parents=True, exist_ok=True)
    for key in KUBELET_SYSCTLS:
        proc_file = Path("/proc/sys") / key
        if not proc_file.exists():
            continue
        copy = sysctl_dir / key.replace("/", ".")
        copy.write_text(proc_file.read_text())
        _run("mount", "--bind", str(copy), str(proc_file))


def _network(plan: dict[str, Any]) -> None:
    _run("ip", "link", "set", "lo", "up")
    net = plan.get("network")
    if net:
        _run("ip", "link", "add", net["bridge"], "type", "bridge")
        _run("ip", "addr", "add", f"{net['node_ip']}/{net['node_prefix']}", "dev", net["bridge"])
        _run("ip", "link", "set", net["bridge"], "up")
        _run("ip", "route", "add", net["service_cidr"], "dev", net["bridge"])
    for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1"),
                       ("net/bridge/bridge-nf-call-ip6tables", "1")):
        f = Path("/proc/sys") / key
        if f.exists():
            f.write_text(value)


def main(argv: list[str]) -> int:
    plan_file = Path(argv[0])
    plan = json.loads(plan_file.read_text())
    status = Path(plan["status_file"])
    try:
        _run("mount", "-t", "sysfs", "-o", "nosuid,nodev,noexec", "sysfs", "/sys")
        _mount_cgroups(plan)
        _mount_fs(plan)
        _network(plan)
    except Exception as exc:
        status.write_text(f"error: {exc}\n")
        return 1
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    status.write_text("ready\n")
    while not stop:
        signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
