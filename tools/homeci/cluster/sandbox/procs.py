"""Processes by pid, for every provider: whether one is alive and still ours, starting one in a cgroup (and
inside a sandbox's namespaces) with its own log file and its pid in ``<state>/pids/<name>.pid``, and
stopping by pid with a deadline, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from homeci.cluster.sandbox import cgroups


def alive(pid: int) -> bool:
    """The process exists and is not a zombie. When /proc cannot be read, the signal check decides: the
    process exists, so it counts as alive (never mistake a live process for a finished one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def start(name: str, cmd: Sequence[str], *, state: Path, hierarchies: list[cgroups.Hierarchy],
          cgroup: str, holder: int | None, env: dict[str, str] | None = None) -> int:
    """Start ``cmd`` (inside the holder's namespaces when ``holder``) in the background; its pid."""
    logs, pids = state / "logs", state / "pids"
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    argv = list(cmd)
    if holder is not None:
        # nsenter execs the daemon: the pid we get is the daemon's.
        argv = ["nsenter", "-t", str(holder), "-m", "-n", "--", *argv]

    def prepare() -> None:
        cgroups.join(hierarchies, cgroup)

    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=prepare, env=env, close_fds=True)
    (pids / f"{name}.pid").write_text(f"{proc.pid}\n")
    _reapers.append(proc)
    return proc.pid


# Popen objects of children started by this process, polled so they never linger as zombies.
_reapers: list[subprocess.Popen[bytes]] = []


def exit_status(pid: int) -> int | None:
    """The exit status of a child this process started and that has ended (None: running, or not ours)."""
    for p in _reapers:
        if p.pid == pid:
            return p.poll()
    return None


def reap() -> None:
    for p in list(_reapers):
        if p.poll() is not None:
            _reapers.remove(p)


def read_pids(state: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for f in sorted((state / "pids").glob("*.pid")) if (state / "pids").is_dir() else []:
        with contextlib.suppress(ValueError):
            found[f.stem] = int(f.read_text().strip())
    return found


def owned(pid: int, marker: str) -> bool:
    """``pid`` still runs a command line mentioning ``marker`` (guards against pid reuse)."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop(pids: dict[str, int], *, marker: str, timeout: float = 10) -> None:
    """SIGTERM the pids (only those still ours), wait up to ``timeout``, then SIGKILL what is left."""
    mine = {n: p for n, p in pids.items() if alive(p) and owned(p, marker)}
    for pid in mine.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in mine.values()):
        reap()
        time.sleep(0.1)
    for pid in mine.values():
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in mine.values()):
        reap()
        time.sleep(0.05)
    reap()


def log_tail(state: Path, name: str, lines: int = 3) -> str:
    f = state / "logs" / f"{name}.log"
    if not f.is_file():
        return ""
    text = f.read_bytes()[-4000:].decode(errors="replace").strip().splitlines()
    return " | ".join(ln.strip()[:200] for ln in text[-lines:])
