"""Benchmark: wall time of `homeci lint` beside the bare helm calls it makes.

    .venv/bin/python benchmarks/lint.py [CHART...] [--jobs N]

Runs `homeci lint` (the CLI, as a user would: default jobs and -j 1), then replays the same helm
invocations as bare subprocesses, one after another: the `helm template` calls (one per scenario and
Kubernetes version, or one per scenario when no template reads .Capabilities) and the `helm lint`
calls (one per scenario and Helm major). Prints each time and
homeci's overhead over them. Target: overhead under 50% against the bare helm template calls.
Figures depend on the machine and on whatever else runs on it; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from homeci import paths, rendering
from homeci.helm import Helm
from homeci.lint import kubeversions
from homeci.lint.runner import Linter, _is_library, reads_capabilities


def bare_calls(charts: list[Path]) -> tuple[list[list[str]], list[list[str]]]:
    """The exact argv of every helm template and helm lint call `homeci lint` makes."""
    templates: list[list[str]] = []
    lints: list[list[str]] = []
    helm = {m: str(Helm(m).binary) for m in (3, 4)}
    for chart in charts:
        versions = kubeversions.validation_range(chart)
        for scenario in [None, *rendering.scenarios(chart)]:
            values = ["--values", str(scenario)] if scenario else []
            for major in (3, 4):
                lints.append([helm[major], "lint", str(chart), "--strict", "--kube-version", versions[1],
                              *values])
            if _is_library(chart):
                continue
            for version in versions if reads_capabilities(chart) else versions[-1:]:
                templates.append([helm[3], "template", rendering.DEFAULT_RELEASE, str(chart), "--namespace",
                                  rendering.DEFAULT_NAMESPACE, *values, "--kube-version", version,
                                  "--include-crds"])
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


def pct(value: float, base: float) -> str:
    return f"{(value - base) / base * 100:+.0f}%" if base else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("charts", nargs="*", help="charts (default: every chart under charts/)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="jobs for the parallel run (default: homeci's)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time of each is shown")
    args = parser.parse_args()
    charts = [paths.resolve_chart(c) for c in args.charts] if args.charts else paths.find_charts()
    templates, lints = bare_calls(charts)
    names = [str(c) for c in charts]
    print(f"charts: {len(charts)}; helm template calls: {len(templates)}; helm lint calls: {len(lints)}; "
          f"cores: {os.cpu_count()}", flush=True)
    load = os.getloadavg()[0]
    # interleaved rounds, best of each: other work on the machine inflates single measurements
    par, ser, tpl, lnt, rc = [], [], [], [], 0
    for _ in range(args.repeat):
        secs, rc = time_homeci(names, args.jobs)
        par.append(secs)
        ser.append(time_homeci(names, 1)[0])
        tpl.append(run_serially(templates))
        lnt.append(run_serially(lints))
    wall_par, wall_ser, bare_tpl, bare_lint = min(par), min(ser), min(tpl), min(lnt)
    # homeci's own work: an in-process serial run minus the time spent waiting for helm
    linter = Linter(jobs=1, record=True)
    start = time.monotonic()
    linter.run(charts)
    inproc = time.monotonic() - start
    in_helm = sum(c.seconds for c in linter.helm_calls)
    bare_all = bare_tpl + bare_lint
    rows = [
        (f"homeci lint (jobs {args.jobs or 'default'}, exit {rc})", wall_par, pct(wall_par, bare_tpl),
         pct(wall_par, bare_all)),
        ("homeci lint -j 1", wall_ser, pct(wall_ser, bare_tpl), pct(wall_ser, bare_all)),
        (f"bare helm template x{len(templates)}, serial", bare_tpl, "", ""),
        (f"bare helm lint x{len(lints)}, serial", bare_lint, "", ""),
        ("bare helm calls total, serial", bare_all, "", ""),
    ]
    print(f"{'':44} {'seconds':>8}  {'vs template':>11}  {'vs all helm':>11}")
    for label, secs, a, b in rows:
        print(f"{label:44} {secs:8.1f}  {a:>11}  {b:>11}")
    own = inproc - in_helm
    print(f"homeci's own work (in-process, -j 1): {own:.1f}s beside {in_helm:.1f}s in "
          f"{len(linter.helm_calls)} helm calls = {own / in_helm * 100:.0f}% overhead")
    overhead = (wall_par - bare_tpl) / bare_tpl * 100 if bare_tpl else 0.0
    print(f"overhead of homeci lint over its bare helm template calls: {overhead:+.0f}% "
          f"(target < 50%: {'met' if overhead < 50 else 'NOT met'}); parallel speed-up over -j 1: "
          f"{wall_ser / wall_par:.2f}x; best of {args.repeat}; load average at start: {load:.1f}, "
          f"at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
