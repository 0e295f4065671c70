"""``nox -s test`` in three pytest processes side by side (``python -m homeci_testing.lanes``).

The offline tiers use a 2-core machine badly one test at a time: the cluster tiers (T1 on the simulated
cluster; the real node and the provider contract on sim) mostly wait on their clusters, while the static
and real-program tiers (T0, unit, T2) keep one core busy rendering charts and running programs. Each lane
is its own pytest session with its own markers, so no test runs twice and every session fixture (the
simulated cluster, the real node, the provider contract's stack) stays one per run. The first lane prints
as it goes; the others write to a log, whose summary (or, when it failed, everything) is printed when it
ends. The exit status is the first failing lane's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CLUSTER_MARKERS = "sim or netns or providers"


@dataclass
class Lane:
    name: str
    args: list[str]
    log: Path | None = None  # None: printed as it runs
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)

    def start(self, env: dict[str, str]) -> None:
        out: IO[bytes] | None = self.log.open("wb") if self.log else None
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest", *self.args], stdout=out,
                                     stderr=subprocess.STDOUT if out else None, env=env)
        if out:
            out.close()  # the child holds its own copy


def default_lanes(log_dir: Path, provider: str = "sim") -> list[Lane]:
    """The simulated-cluster tier (printed live: the longest), the real node with the provider contract,
    and the static and real-program tiers (both logged). ``HOMECI_SIM_WORKERS`` sets the simulated tier's
    workers (2)."""
    return [
        # two workers (pytest-xdist), a simulated cluster each, whole modules at a time (their module
        # fixtures install once): the tier mostly waits on its clusters, and was the longest lane alone
        Lane("simulated-cluster tier (T1)", ["-q", "-m", "sim and not integration", "--provider", provider,
                                             "-n", os.environ.get("HOMECI_SIM_WORKERS", "2"),
                                             "--dist", "loadfile"]),
        Lane("the real node and the provider contract",
             ["-q", "-m", "(netns or providers) and not (sim or integration)", "--provider", provider],
             log=log_dir / "nodes.log"),
        Lane("static and real-program tiers (unit, T0, T2)",
             ["-q", "-m", f"not ({CLUSTER_MARKERS} or integration)", "--provider", provider],
             log=log_dir / "static.log"),
    ]


def summary(log: Path) -> str:
    """The end of a lane's log: pytest's short summary (``-ra``) and its counts line."""
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "short test summary info" in line:
            return "\n".join(lines[i:])
    return "\n".join(lines[-3:])


def run(lanes: list[Lane]) -> int:
    env = dict(os.environ)
    for lane in lanes:
        where = f" (log: {lane.log})" if lane.log else ""
        print(f"== lane started: {lane.name}{where}", flush=True)
        lane.start(env)
    status = 0
    try:
        pending = list(lanes)
        while pending:
            for lane in list(pending):
                assert lane.proc is not None
                code = lane.proc.poll()
                if code is None:
                    continue
                pending.remove(lane)
                took = time.monotonic() - lane.started
                verdict = "passed" if code == 0 else f"FAILED ({code})"
                print(f"\n== lane {verdict} in {took:.0f} s: {lane.name}", flush=True)
                if lane.log:
                    print(lane.log.read_text(errors="replace") if code else summary(lane.log), flush=True)
                status = status or code
            time.sleep(0.5)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: every lane gets it too and tears its clusters down before we return.
        for lane in lanes:
            if lane.proc and lane.proc.poll() is None:
                lane.proc.send_signal(signal.SIGINT)
        for lane in lanes:
            if lane.proc:
                lane.proc.wait()
        raise
    return status


def main() -> int:
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix="homeci-lanes-"))
    return run(default_lanes(log_dir))


if __name__ == "__main__":
    sys.exit(main())
