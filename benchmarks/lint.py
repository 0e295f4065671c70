"""Benchmark: wall time of `homeci lint` against the bare `helm template` calls it needs.

    .venv/bin/python benchmarks/lint.py [CHART...] [--rounds N] [--jobs N] [--detail]

Each round runs, back to back in this one process, `homeci lint` (the CLI, as a user runs it) and the
same `helm template` invocations as bare subprocesses one after another (the renders homeci's plan makes:
one per scenario and Kubernetes version, or one per scenario when no template reads .Capabilities).
The order alternates between rounds so a change in the machine's load falls on both sides; each
round prints its ratio and the load average, the end the median. Target: homeci lint <= 1.5x the bare
renders. `--detail` adds the bare `helm lint` calls, `homeci lint -j 1` and homeci's own (non-helm)
work in-process. Figures depend on the machine and on whatever else runs on it; nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from homeci import paths, rendering
from homeci.helm import Helm
from homeci.lint.runner import Linter

TARGET = 1.5


def bare_calls(charts: list[Path]) -> tuple[list[list[str]], list[list[str]]]:
    """The exact argv of every helm template and helm lint call `homeci lint` makes (from its plan)."""
    templates: list[list[str]] = []
    lints: list[list[str]] = []
    helm = {m: str(Helm(m).binary) for m in (3, 4)}
    for job in Linter().plan(charts).jobs:
        values = ["--values", str(job.scenario)] if job.scenario else []
        if job.kind == "lint":
            version = ["--kube-version", job.kube_version] if job.kube_version else []
            lints.append([helm[job.major], "lint", str(job.chart), "--strict", *version, *values])
        elif job.kind == "render":
            assert job.kube_version is not None
            templates.append([helm[job.major], "template", rendering.DEFAULT_RELEASE, str(job.chart),
                              "--namespace", rendering.DEFAULT_NAMESPACE, *values, "--kube-version",
                              job.kube_version, "--include-crds"])
    return templates, lints


def run_serially(calls: list[list[str]]) -> float:
    start = time.monotonic()
    for argv in calls:
        subprocess.run(argv, capture_output=True, check=False)
    return time.monotonic() - start


def time_homeci(charts: list[str], jobs: int | None) -> tuple[float, int]:
    argv = [sys.executable, "-m", "homeci.cli", "lint", *charts, *(["--jobs", str(jobs)] if jobs else [])]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.monotonic() - start, proc.returncode


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("charts", nargs="*", help="charts (default: every chart under charts/)")
    parser.add_argument("--jobs", type=int, default=None, help="homeci lint --jobs (default: homeci's)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5); the median ratio counts")
    parser.add_argument("--detail", action="store_true",
                        help="also time the bare helm lint calls, -j 1 and homeci's own work")
    args = parser.parse_args()
    charts = [paths.resolve_chart(c) for c in args.charts] if args.charts else paths.find_charts()
    templates, lints = bare_calls(charts)
    names = [str(c) for c in charts]
    jobs = args.jobs or Linter().jobs
    print(f"charts: {len(charts)}; helm template calls: {len(templates)}; helm lint calls: {len(lints)}; "
          f"cores: {os.cpu_count()}; homeci lint jobs: {jobs}; load average (1/5 min) at start: {load()}",
          flush=True)
    print(f"{'round':>5}  {'homeci lint':>11}  {'bare renders':>12}  {'ratio':>6}  {'load':>9}", flush=True)
    ratios: list[float] = []
    rc = 0
    for n in range(args.rounds):
        if n % 2:   # alternate the order: a load trend falls on both sides
            bare = run_serially(templates)
            secs, rc = time_homeci(names, args.jobs)
        else:
            secs, rc = time_homeci(names, args.jobs)
            bare = run_serially(templates)
        ratios.append(secs / bare)
        print(f"{n + 1:>5}  {secs:>10.1f}s  {bare:>11.1f}s  {secs / bare:>5.2f}x  {load():>9}", flush=True)
    median = statistics.median(ratios)
    verdict = "met" if median <= TARGET else "NOT met"
    print(f"homeci lint (exit {rc}) / bare helm template calls, serial: median {median:.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x) over {args.rounds} rounds; "
          f"target <= {TARGET}x: {verdict}; load average at end: {load()}")
    if args.detail:
        detail(charts, names, lints)


def detail(charts: list[Path], names: list[str], lints: list[list[str]]) -> None:
    bare_lint = run_serially(lints)
    serial, _ = time_homeci(names, 1)
    linter = Linter(jobs=1, record=True)
    start = time.monotonic()
    linter.run(charts)
    inproc = time.monotonic() - start
    in_helm = sum(c.seconds for c in linter.helm_calls)
    own = inproc - in_helm
    print(f"bare helm lint x{len(lints)}, serial: {bare_lint:.1f}s; homeci lint -j 1: {serial:.1f}s; "
          f"in-process -j 1: homeci's own work {own:.1f}s beside {in_helm:.1f}s in "
          f"{len(linter.helm_calls)} helm calls ({own / in_helm * 100:.0f}%); load average {load()}")


if __name__ == "__main__":
    main()
