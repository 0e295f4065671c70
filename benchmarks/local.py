"""Local real-cluster figures (a script that prints numbers, not a timed test).

    .venv/bin/python benchmarks/local.py [--name homeci-bench] [--rounds 2] [--rebuild-images] [--keep]

Needs a Linux host and root (the local real node). Prints:

- the toolchain build time of every binary the node and its images use (recorded by `homeci toolchain
  install` in build.json; the first build on a machine is the cold one);
- each image's archive size, and with ``--rebuild-images`` the time to rebuild it from the cached toolchain
  and OS layers (``force``);
- `local up` (create → node Ready, CoreDNS answering), the umbrella's `helm upgrade --install --wait`
  (image import included), a no-op upgrade with the same values, drone-pipelines;
- the push-to-deploy phases of ``--rounds`` pushes of the sample app (the `homeci smoke` table);
- per pod of the stack: memory working set and CPU from the kubelet's summary API, beside the pod's
  memory request and limit (the footprint the chart promises).

The cluster is deleted at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from homeci import images
from homeci.cluster.local import LocalCluster, unsupported_reason
from homeci.cluster.local.cluster import TOOLS as LOCAL_TOOLS
from homeci.cluster.local.cluster import cluster_images
from homeci.commands.smoke import report
from homeci.flow import driver, setup
from sim import build_times, timed


def image_figures(rebuild: bool) -> None:
    refs = sorted({r.ref for r in images.referenced_images() if r.default} | set(cluster_images()))
    how = " (rebuilt: cached toolchain and OS layers)" if rebuild else ""
    print(f"images built from source{how}:")
    total = 0
    for ref in refs:
        start = time.monotonic()
        archive = images.build([ref], force=rebuild)[images.normalize(ref)]
        took = f"{time.monotonic() - start:6.1f} s" if rebuild else ""
        size = archive.stat().st_size
        total += size
        print(f"  {ref:<48} {size / 1e6:7.1f} MB {took}")
    print(f"  {'total':<48} {total / 1e6:7.1f} MB")


def quantity_mib(value: str | None) -> str:
    if not value:
        return "-"
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for unit, factor in units.items():
        if value.endswith(unit):
            return f"{float(value[: -len(unit)]) * factor:.0f}"
    return f"{float(value) / 2**20:.0f}"


def memory_of(pod: Any, kind: str) -> float:
    """Sum of the containers' memory requests or limits, MiB."""
    values = [(getattr(c.resources, kind) or {}).get("memory") for c in pod.spec.containers if c.resources]
    return sum(float(quantity_mib(v)) for v in values if v)


def pod_usage(cluster: LocalCluster, namespaces: list[str]) -> None:
    from kubernetes import client

    api = cluster.api()
    core = client.CoreV1Api(api)
    node = cluster.layout.node_name
    summary: dict[str, Any] = api.call_api(
        f"/api/v1/nodes/{node}/proxy/stats/summary", "GET", auth_settings=["BearerToken"],
        response_type="object", _return_http_data_only=True)
    usage = {(p["podRef"]["namespace"], p["podRef"]["name"]): p for p in summary.get("pods", [])}
    print(f"{'pod':<52} {'working set MiB':>15} {'CPU mcores':>10} {'request MiB':>11} {'limit MiB':>9}")
    total = 0.0
    for ns in namespaces:
        for pod in core.list_namespaced_pod(ns).items:
            if pod.status.phase != "Running":
                continue
            stats = usage.get((ns, pod.metadata.name), {})
            ws = (stats.get("memory") or {}).get("workingSetBytes") or 0
            cpu = ((stats.get("cpu") or {}).get("usageNanoCores") or 0) / 1e6
            total += ws
            req, lim = memory_of(pod, "requests"), memory_of(pod, "limits")
            print(f"{ns + '/' + pod.metadata.name:<52} {ws / 2**20:15.0f} {cpu:10.0f} {req:11.0f} {lim:9.0f}")
    print(f"{'total':<52} {total / 2**20:15.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="homeci-bench")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rebuild-images", action="store_true", help="Rebuild every image (force).")
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    args = parser.parse_args()
    reason = unsupported_reason()
    if reason:
        raise SystemExit(f"the local real node cannot run here: {reason}")

    recipes = {name for r in images.RECIPES for name in r.tools}
    build_times((*LOCAL_TOOLS, *sorted(recipes - set(LOCAL_TOOLS))))
    image_figures(args.rebuild_images)
    cluster = LocalCluster(args.name)
    cluster.down()
    try:
        timed("local up (create → node Ready, DNS answering)", lambda: cluster.up(timeout=300))
        timed("umbrella: image import + helm upgrade --install --wait", lambda: cluster.install_stack())
        timed("umbrella: helm upgrade --wait, same values (no-op)", lambda: cluster.install_stack())
        with tempfile.TemporaryDirectory(prefix="homeci-bench-") as tmp:
            # setup.local reuses the running cluster; it upgrades the umbrella once more (no-op) first
            prepared = timed("setup.local: no-op upgrade + drone-pipelines + base image seeded",
                             lambda: setup.local(args.name, workdir=Path(tmp)))
            rounds = driver.run(prepared.stack, prepared.app, Path(tmp), rounds=args.rounds)
            Console(width=160).print(report(rounds))
        pod_usage(cluster, ["homeci", "kube-system", setup.TARGET])
    finally:
        if not args.keep:
            timed("local down", lambda: cluster.down())


if __name__ == "__main__":
    main()
