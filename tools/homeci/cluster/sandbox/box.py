"""One sandbox: a state directory, a cgroup parent, a holder owning a network and a mount namespace, a
forwarder from the host's 127.0.0.1 into it, and daemons started inside by pid.

Nothing a daemon in the sandbox does reaches the host: its network namespace has no route out, its mount
namespace keeps ``/run``, ``/var/lib``, ``/var/log`` and overlays of ``/etc`` (and the plan's other
overlays) in the state directory, every process sits in the cgroup parent (so limits apply and
:meth:`Sandbox.destroy` finds each one), and the host sees only the forwarder's loopback ports.
``sandbox.json`` in the state directory records what was made (cgroups, ports), so ``destroy`` and
``leftovers`` work from another process, after a crash too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeci.cluster.provider import Record, free_port
from homeci.cluster.sandbox import cgroups, procs
from homeci.errors import HomeciError

HERE = Path(__file__).resolve().parent
HOLDER, FORWARDER = "holder", "forwarder"


@dataclass(frozen=True)
class Phase:
    """One step of a teardown or a stop: stop ``names`` (``timeout`` seconds, then SIGKILL), then end every
    process left in the cgroup ``subtree`` (relative to the sandbox's parent, e.g. ``kubepods``): SIGTERM
    and up to ``grace`` seconds to exit first when ``grace`` is set (a shutdown), else SIGKILL at once;
    then ``then``, if given (e.g. with the kubelet stopped, tidy up through containerd before it stops)."""

    names: tuple[str, ...] = ()
    subtree: str | None = None
    timeout: float = 3
    grace: float = 0
    then: Callable[[], None] | None = field(default=None, compare=False)


class Sandbox:
    def __init__(self, name: str, state: Path) -> None:
        self.name = name
        self.state = state

    # -- records -------------------------------------------------------------------------------------

    @property
    def record(self) -> Record:
        return Record(self.state / "sandbox.json")

    def info(self) -> dict[str, Any]:
        return self.record.read()

    def _save(self, **changes: Any) -> None:
        self.record.update(**changes)

    @property
    def ports(self) -> dict[str, int]:
        return {k: int(v) for k, v in (self.info().get("ports") or {}).items()}

    @property
    def parent(self) -> str | None:
        value = self.info().get("parent")
        return str(value) if value else None

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def log_tail(self, name: str) -> str:
        return procs.log_tail(self.state, name)

    # -- making it -----------------------------------------------------------------------------------

    def create(self, *, ports: Mapping[str, Sequence[int]], targets: Mapping[str, str], hosts: str,
               network: dict[str, Any] | None = None, overlays: Sequence[str] = ("/etc",),
               mkdirs: Sequence[str] = ()) -> dict[str, int]:
        """A fresh state directory, the cgroup parent, the holder and the forwarder; the host ports.

        ``ports`` maps a listener to the ports it prefers (the first free one is taken, else any);
        ``targets`` maps a listener to ``<ip>:<port>`` inside the namespace (more with :meth:`forward`)."""
        if self.state.exists():
            shutil.rmtree(self.state)
        (self.state / "fs").mkdir(parents=True)
        chosen = {name: free_port(*preferred) for name, preferred in ports.items()}
        self._save(ports=chosen)
        self._make_cgroups()
        plan = {"status_file": str(self.state / "holder.status"), "fs": str(self.state / "fs"),
                "hosts": hosts, "hierarchies": self.info()["hierarchies"], "network": network,
                "overlays": list(overlays), "mkdirs": list(mkdirs)}
        (self.state / "holder.json").write_text(json.dumps(plan, indent=2))
        self.forward(**targets)
        self._start_namespaces(chosen)
        return chosen

    def restart(self) -> dict[str, int]:
        """Bring a stopped sandbox back as a machine boots: the same state directory (``/var/lib``, the
        ``/etc`` overlay, everything the daemons keep), an empty ``/run``, the cgroup parent made again
        (under the starting process's own cgroup, so its path may differ: read :attr:`parent`), new
        namespaces from the same plan, the forwarder on the same host ports. The daemons are the
        caller's to start (:meth:`start`)."""
        plan_file = self.state / "holder.json"
        if not plan_file.is_file():
            raise HomeciError(f"sandbox {self.state} was never created: nothing to start")
        if self.pids():
            running = ", ".join(sorted(self.pids()))
            raise HomeciError(f"sandbox {self.state} still runs {running}: stop it first")
        ports = self.ports
        taken = [f"{name} {port}" for name, port in ports.items() if free_port(port) != port]
        if taken:
            raise HomeciError(f"127.0.0.1 port(s) {', '.join(taken)} of {self.state.name} are taken by "
                              "another program: stop it, then start the cluster again")
        run = self.state / "fs" / "run"
        if run.is_dir():
            shutil.rmtree(run)  # /run is a tmpfs on a real machine: empty after a boot
        for status in ("holder.status", "forwarder.status"):
            (self.state / status).unlink(missing_ok=True)
        self._make_cgroups()
        plan = json.loads(plan_file.read_text())
        plan["hierarchies"] = self.info()["hierarchies"]
        plan_file.write_text(json.dumps(plan, indent=2))
        self._start_namespaces(ports)
        return ports

    def _make_cgroups(self) -> None:
        hs = cgroups.hierarchies()
        parent = cgroups.parent_path(self.name)
        self._save(parent=parent, created_cgroups=[],
                   hierarchies=[{"mountpoint": str(h.mountpoint), "fstype": h.fstype, "options": h.options}
                                for h in hs])
        self._save(created_cgroups=cgroups.create(hs, parent))

    def _start_namespaces(self, ports: Mapping[str, int]) -> None:
        """The holder (its namespaces from ``holder.json``), then the forwarder on ``ports``."""
        cmd = ["unshare", "--net", "--mount", "--propagation", "slave", "--",
               sys.executable, str(HERE / "holder.py"), str(self.state / "holder.json")]
        holder = self._start(HOLDER, cmd, holder=None)
        self._wait_status(self.state / "holder.status", HOLDER, holder)
        forward = {"netns": f"/proc/{holder}/ns/net", "status_file": str(self.state / "forwarder.status"),
                   "targets_file": str(self.targets_file),
                   "listeners": [{"name": n, "port": p} for n, p in ports.items()]}
        (self.state / "forward.json").write_text(json.dumps(forward, indent=2))
        cmd = [sys.executable, str(HERE / "forward.py"), str(self.state / "forward.json")]
        pid = self._start(FORWARDER, cmd, holder=None)
        self._wait_status(self.state / "forwarder.status", FORWARDER, pid)

    def start(self, name: str, cmd: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        """Start ``cmd`` inside the holder's namespaces (nsenter), in the sandbox's cgroup; its pid."""
        holder = self.pids().get(HOLDER)
        if holder is None:
            raise HomeciError(f"sandbox {self.state}: the holder is not running; start it with create()")
        return self._start(name, cmd, holder=holder, env=env)

    def _start(self, name: str, cmd: Sequence[str], *, holder: int | None,
               env: Mapping[str, str] | None = None) -> int:
        parent = self.parent
        assert parent is not None, "create() records the cgroup parent first"
        hs = cgroups.hierarchies()
        return procs.start(name, cmd, state=self.state, hierarchies=hs, cgroup=f"{parent}/system",
                           holder=holder, env=dict(env) if env is not None else None)

    def _wait_status(self, path: Path, name: str, pid: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text().strip() if path.is_file() else ""
            if text == "ready":
                return
            if text.startswith("error"):
                raise HomeciError(f"{name}: {text}; log: {self.logs / (name + '.log')}")
            if not procs.alive(pid):
                raise HomeciError(f"{name} exited at start: {self.log_tail(name)}")
            time.sleep(0.05)
        raise HomeciError(f"{name} not ready after {timeout:.0f}s: {self.log_tail(name)}")

    # -- while it runs -------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Name -> pid of every recorded process that still runs and is still ours."""
        return {n: p for n, p in procs.read_pids(self.state).items()
                if procs.alive(p) and procs.owned(p, str(self.state))}

    def check_alive(self, *names: str) -> None:
        """Raise, with its exit status and the tail of its log, when one of ``names`` has exited. (By the
        recorded pid alone: a process that is exec-ing has no command line to check for a moment.)"""
        recorded = procs.read_pids(self.state)
        for n in names:
            pid = recorded.get(n)
            if pid is None or not procs.alive(pid):
                status = procs.exit_status(pid) if pid is not None else None
                how = f" with status {status}" if status is not None else ""
                raise HomeciError(f"{n} exited{how}: {self.log_tail(n) or '(no output)'} "
                                  f"(log: {self.logs / (n + '.log')})")

    @property
    def targets_file(self) -> Path:
        return self.state / "forward-targets.json"

    def forward(self, **targets: str) -> None:
        """Point listeners at ``<ip>:<port>`` inside the namespace (read by the forwarder per connection)."""
        Record(self.targets_file).update(**targets)

    def inside(self, path: str) -> Path:
        """``path`` as the holder's mount namespace sees it (e.g. its private /etc/hosts)."""
        holder = self.pids().get(HOLDER)
        if holder is None:
            raise HomeciError(f"sandbox {self.state} is not running")
        return Path(f"/proc/{holder}/root") / path.lstrip("/")

    # -- taking it down ------------------------------------------------------------------------------

    def destroy(self, phases: Sequence[Phase] = (), *, keep_logs: bool = False) -> None:
        """Stop every process (``phases`` first, in order), remove the cgroups and the state directory
        (but its ``logs`` with ``keep_logs``); fails naming the cgroups that could not be removed."""
        left = self._halt(phases)
        self._wipe(keep_logs)
        if left:
            raise HomeciError(f"cgroups left behind: {', '.join(left)}; remove them with rmdir")

    def stop(self, phases: Sequence[Phase] = ()) -> None:
        """Every process ends (``phases`` first, in order) and the cgroups and namespaces go, as when the
        machine powers off; the state directory stays for :meth:`restart`."""
        left = self._halt(phases)
        self._save(created_cgroups=[])
        if left:
            raise HomeciError(f"cgroups left behind: {', '.join(left)}; remove them with rmdir")

    def _halt(self, phases: Sequence[Phase]) -> list[str]:
        """Stop every process and remove the cgroups; the cgroups that could not be removed."""
        marker = str(self.state)
        pids = procs.read_pids(self.state)
        parent = self.parent
        hs = cgroups.hierarchies()
        for phase in phases:
            named = {n: pids.pop(n) for n in phase.names if n in pids}
            procs.stop(named, marker=marker, timeout=phase.timeout)
            if parent and phase.subtree:
                if phase.grace:
                    cgroups.terminate_all(hs, f"{parent}/{phase.subtree}", grace=phase.grace)
                cgroups.kill_all(hs, f"{parent}/{phase.subtree}")
            if phase.then is not None:
                with contextlib.suppress(Exception):  # an extra step never stops a teardown halfway
                    phase.then()
        # the holder and the forwarder last: the namespaces go with them
        rest = {n: p for n, p in pids.items() if n not in (HOLDER, FORWARDER)}
        procs.stop(rest, marker=marker, timeout=3)
        procs.stop({n: pids[n] for n in (FORWARDER, HOLDER) if n in pids}, marker=marker, timeout=3)
        if not parent:
            return []
        cgroups.kill_all(hs, parent)
        return cgroups.remove(hs, parent, self.info().get("created_cgroups", []))

    def _wipe(self, keep_logs: bool) -> None:
        for attempt in range(3):
            for child in list(self.state.iterdir()) if self.state.is_dir() else []:
                if keep_logs and child.name in ("logs", self.record.path.name):
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=attempt < 2)
                else:
                    child.unlink(missing_ok=True)
            if not self.state_left():
                break
            time.sleep(0.5)
        if not keep_logs and self.state.is_dir():
            shutil.rmtree(self.state)

    def state_left(self) -> list[str]:
        """What is left in the state directory besides preserved logs."""
        keep = ("logs", self.record.path.name)
        if not self.state.is_dir():
            return []
        return sorted(c.name for c in self.state.iterdir() if c.name not in keep)

    def leftovers(self) -> list[str]:
        """Everything this sandbox could leave behind that still exists (empty = clean)."""
        out: list[str] = []
        marker = str(self.state)
        for p in Path("/proc").iterdir():
            if p.name.isdigit() and int(p.name) != os.getpid() and procs.owned(int(p.name), marker):
                out.append(f"process {p.name}")
        mounts = Path("/proc/self/mountinfo").read_text()
        out += [f"mount {ln.split()[4]}" for ln in mounts.splitlines() if marker in ln]
        info = self.info()
        if info.get("parent"):
            out += [f"cgroup {c}" for c in cgroups.leftovers(cgroups.hierarchies(), info["parent"],
                                                              info.get("created_cgroups", []))]
        left = self.state_left()
        if left:
            out.append(f"directory {self.state} ({', '.join(left[:5])})")
        return out


def host_iptables_rules() -> list[str]:
    """KUBE-* and DOCKER rules in the host's own network namespace (a sandbox must never add any).

    Only the ``-save`` tools: they read existing tables, while ``iptables-legacy -S`` would create
    empty legacy tables in the host's namespace just by listing them."""
    found: list[str] = []
    for prog in ("iptables-nft-save", "iptables-legacy-save"):
        if shutil.which(prog) is None:
            continue
        out = subprocess.run([prog], capture_output=True, text=True, check=False).stdout
        found += [ln for ln in out.splitlines() if "KUBE-" in ln or "DOCKER" in ln]
    return found
