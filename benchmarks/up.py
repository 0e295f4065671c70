"""`nox -s up` as a user runs it, timed by phase (a script that prints figures, not a timed test).

    .venv/bin/python benchmarks/up.py [--provider netns] [--rounds 2] [--via nox|homeci] [--log FILE]

Each round deletes the stack's cluster first (`nox -s down`, not timed), then runs `nox -s up -- --provider
P` (or `homeci cluster up` with ``--via homeci``, without nox's own start) and reads the phases from its
progress lines (printed every one, HOMECI_PROGRESS_EVERY=0), stamped as they arrive:

- start: until homeci names the provider (nox's virtualenv check and install, Python's imports);
- build check and cluster: the prerequisites, the toolchain and image cache checks, the cluster up to nodes
  Ready and CoreDNS answering (the real node imports the stack's images meanwhile);
- images: what loading the stack's images still waits for once the cluster is ready;
- umbrella: `helm upgrade --install --wait` of the umbrella until its pods are Ready (its pre-install hook,
  the pods' start; an upgrade of an existing release: until Helm is done);
- pipelines: the rest: the node side of the public names, drone-pipelines and its registration hook, the base
  images seeded and the pipeline steps' images imported, beside the umbrella's post-install hook (Drone's
  bootstrap; a first install), the summary printed.

With an empty `~/.cache/homeci` the first round is the cold one (everything built); later rounds are warm.
The cluster is left running after the last round (`nox -s down` deletes it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (phase that ends, text of the progress line that ends it)
MARKS = (("start", "provider: "),
         ("build check and cluster", "images built from source for the nodes"),
         ("images", "upgrade --install --wait"),
         ("umbrella", "public names"),
         ("pipelines", "homeci is running on"))


def command(via: str, verb: str, provider: str) -> list[str]:
    if via == "nox":
        return [sys.executable, "-m", "nox", "-s", verb, "--", "--provider", provider]
    return [str(Path(sys.executable).parent / "homeci"), "cluster", verb, "--provider", provider]


def one_round(via: str, provider: str, log: Path | None) -> tuple[float, dict[str, float], int]:
    env = {**os.environ, "HOMECI_PROGRESS_EVERY": "0"}
    start = time.monotonic()
    seen: dict[str, float] = {}
    proc = subprocess.Popen(command(via, "up", provider), cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    sink = log.open("a") if log else None
    for line in proc.stdout:
        now = time.monotonic() - start
        if sink:
            sink.write(f"[{now:7.1f}] {line}")
            sink.flush()
        for phase, text in MARKS:
            if phase not in seen and text in line:
                seen[phase] = now
    code = proc.wait()
    if sink:
        sink.close()
    total = time.monotonic() - start
    phases, before = {}, 0.0
    for phase, _ in MARKS:
        if phase in seen:
            phases[phase] = seen[phase] - before
            before = seen[phase]
    return total, phases, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--provider", default="netns")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--via", choices=("nox", "homeci"), default="nox")
    ap.add_argument("--log", type=Path, default=None,
                    help="append every line of output, stamped, to this file")
    args = ap.parse_args()
    one, five, _ = os.getloadavg()
    print(f"`{' '.join(command(args.via, 'up', args.provider)[1:])}` after `down`, {args.rounds} round(s); "
          f"load average {one:.2f} {five:.2f} ({os.cpu_count()} CPUs)", flush=True)
    totals = []
    for n in range(1, args.rounds + 1):
        subprocess.run(command(args.via, "down", args.provider), cwd=ROOT, capture_output=True, check=False)
        total, phases, code = one_round(args.via, args.provider, args.log)
        split = ", ".join(f"{p} {s:.1f}" for p, s in phases.items())
        failed = "" if code == 0 else f" (FAILED, exit {code})"
        print(f"round {n}: {total:.1f} s{failed}  [{split}]", flush=True)
        if code:
            return code
        totals.append(total)
    each = ", ".join(f"{t:.1f}" for t in totals)
    print(f"median {statistics.median(totals):.1f} s of {len(totals)} ({each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
