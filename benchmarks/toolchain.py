"""Benchmark: a cold `homeci toolchain install` into an empty temporary cache.

    .venv/bin/python benchmarks/toolchain.py [TOOL...] [--cold-go] [--jobs N] [--keep]

Runs the CLI (as a user would) with HOMECI_TOOLCHAIN set to a new temporary folder, so every pinned tool is
built. Go's own caches are the machine's (warm: what is left is linking, the pip install of checkov and
stamping) unless --cold-go gives the run empty GOCACHE and GOMODCACHE folders of its own (everything
downloaded from the module proxy and compiled: what a newcomer's first `nox -s up` pays). Prints the wall
time, the CPU time, each build as recorded in build.json (tools built by one go command share a line) and
the load average before and after. Figures depend on the machine and what else runs on it; nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def records(cache: Path) -> list[tuple[float, str]]:
    """(seconds, label) per go command, from the build.json files the install wrote."""
    seen: dict[tuple[str, ...], float] = {}
    for record in sorted(cache.glob("*/*/build.json")):
        info = json.loads(record.read_text())
        names = tuple(sorted([info["tool"], *info.get("together", [])]))
        seen[names] = float(info["seconds"])
    return sorted(((secs, ", ".join(names)) for names, secs in seen.items()), reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("tools", nargs="*", help="tools (default: what `homeci toolchain install` builds)")
    parser.add_argument("--cold-go", action="store_true", help="empty GOCACHE and GOMODCACHE as well")
    parser.add_argument("--jobs", type=int, default=None, help="homeci toolchain install --jobs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="homeci-bench-toolchain-"))
    env = dict(os.environ, HOMECI_TOOLCHAIN=str(work / "toolchain"))
    if args.cold_go:
        env.update(GOCACHE=str(work / "go-build"), GOMODCACHE=str(work / "go-mod"))
    argv = [sys.executable, "-m", "homeci.cli", "toolchain", "install", *args.tools,
            *(["--jobs", str(args.jobs)] if args.jobs else [])]
    print(f"cache {work}; Go caches {'empty' if args.cold_go else 'the machine’s (warm)'}; cores "
          f"{os.cpu_count()}; load average (1/5 min) at start {load()}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for secs, label in records(work / "toolchain"):
        print(f"  {secs:7.1f} s  {label}")
    print(f"homeci toolchain install (exit {proc.returncode}): {wall:.0f} s wall, {cpu:.0f} s CPU; load "
          f"average at end {load()}")
    if args.keep:
        print(f"kept {work}")
    else:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)  # the module cache is read-only
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
