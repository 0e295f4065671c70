"""Simulated-cluster figures for the README (a script that prints numbers, not a timed test).

    .venv/bin/python benchmarks/sim.py [--name homeci-bench] [--keep]

Prints: the toolchain build time of each control-plane binary (recorded by `homeci toolchain
install` in build.json beside the binary; cold = empty Go cache), `sim up` to ready, and for Helm 3
and Helm 4 the `helm install --wait` of the umbrella with defaults and a no-op `helm upgrade --wait`.
The cluster it starts is deleted at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import TypeVar

from homeci import toolchain
from homeci.cluster.sim import SimCluster
from homeci.cluster.sim.simcluster import TOOLS
from homeci.helm import Helm
from homeci.kubeaccess import ensure_namespace, pss_labels
from homeci.paths import charts_dir

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> T:
    start = time.monotonic()
    result = fn()
    print(f"{label:<44} {time.monotonic() - start:7.1f} s", flush=True)
    return result


def build_times(names: tuple[str, ...] = (*TOOLS, "helm3", "helm4")) -> None:
    print("toolchain builds (from build.json; first build on this machine = cold Go cache):")
    total = 0.0
    for name in names:
        t = toolchain.tool(name)
        record = t.cached_path.parent / "build.json"
        info = json.loads(record.read_text()) if record.is_file() else {}
        if isinstance(info, dict) and "seconds" in info:
            secs = float(info["seconds"])
            total += secs
            print(f"  {name:<26} {t.version:<10} {secs:7.1f} s")
        else:
            state, _ = toolchain.status(name)
            print(f"  {name:<26} {t.version:<10} {'(not recorded: ' + state + ')':>18}")
    print(f"  {'total recorded':<37} {total:7.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="homeci-bench")
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    args = parser.parse_args()

    build_times()
    cluster = SimCluster(args.name)
    cluster.down()
    chart = charts_dir() / "homeci-umbrella"
    try:
        timed("sim up (create → nodes Ready)", lambda: cluster.up(timeout=240))
        api = cluster.api()
        for major in (3, 4):
            ns = f"bench-helm{major}"
            ensure_namespace(api, ns, pss_labels())
            helm = Helm(major, kubeconfig=cluster.kubeconfig)
            timed(f"helm{major} install --wait (umbrella defaults)",
                  lambda h=helm, n=ns: h.install("homeci", chart, namespace=n, timeout="5m"))
            timed(f"helm{major} upgrade --wait (same values, no-op)",
                  lambda h=helm, n=ns: h.upgrade("homeci", chart, namespace=n, timeout="5m", install=False))
            timed(f"helm{major} uninstall --wait",
                  lambda h=helm, n=ns: h.uninstall("homeci", namespace=n, timeout="5m"))
    finally:
        if not args.keep:
            timed("sim down", cluster.down)


if __name__ == "__main__":
    main()
