#!/usr/bin/env python3
"""Compute the default install's footprint and write it into README.md (between the footprint markers).

Usage: python benchmarks/footprint.py [--check]
  --check   do not write; exit 1 when the README block is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from homeci.rendering import render
from homeci_testing import footprint

ROOT = Path(__file__).resolve().parents[1]
UMBRELLA = ROOT / "charts" / "homeci-umbrella"
README = ROOT / "README.md"
KUBE_VERSION = "1.37.0"


def block() -> tuple[footprint.Footprint, str]:
    fp = footprint.compute(render(UMBRELLA, (), (), kube_version=KUBE_VERSION))
    return fp, footprint.markdown(fp)


def main(argv: list[str]) -> int:
    fp, text = block()
    req, lim = fp.requests, fp.limits
    print(
        f"requests: {req.cpu.normalize():f}m CPU, {req.memory_mi:.1f} MiB; "
        f"limits: {lim.cpu.normalize():f}m CPU, {lim.memory_mi:.1f} MiB; "
        f"budget {footprint.BUDGET_CPU_MILLI}m/{footprint.BUDGET_MEMORY_MI} MiB: "
        f"{'ok' if fp.within_budget() else 'OVER'}"
    )
    if "--check" in argv:
        stale = footprint.current_block(README.read_text()) != text
        print(
            "README footprint block is "
            + ("STALE: run python benchmarks/footprint.py" if stale else "current")
        )
        return 1 if stale else 0
    changed = footprint.update_readme(README, text)
    print("README.md updated" if changed else "README.md already current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
