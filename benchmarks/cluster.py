"""Real-cluster figures, netns or kind (a script that prints numbers, not a timed test).

    .venv/bin/python benchmarks/cluster.py [--provider netns|kind] [--nodes N] [--name homeci-bench]
                                           [--rounds 2] [--rebuild-images] [--keep]

Needs a Linux host and root (the real node, or kind's contained engine), or a Docker engine (kind).
Prints:

- the toolchain build time of every binary the provider and its images use (recorded by `homeci toolchain
  install` in build.json; the first build on a machine is the cold one) — for kind, what it adds to the
  real node's toolchain (kubeadm, kind) on its own line;
- each image's archive size, and with ``--rebuild-images`` the time to rebuild it from the cached toolchain
  and OS layers (``force``); for offline kind also the node image and kubeadm's images (what kind adds);
- `up` (create → nodes Ready, CoreDNS answering), the stack install (images, umbrella, drone-pipelines,
  base images seeded), the same install again (no-op upgrade);
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
from homeci.cluster import Cluster, make, prereqs
from homeci.cluster.install import TARGET, default_images, install_stack
from homeci.cluster.netns.netnscluster import TOOLS as NODE_TOOLS
from homeci.commands.smoke import report
from homeci.flow import driver
from homeci.paths import sample_app
from sim import build_times, timed

KIND_ADDS = ("kubeadm", "kind")


def image_figures(refs: list[str], rebuild: bool, title: str) -> float:
    how = " (rebuilt: cached toolchain and OS layers)" if rebuild else ""
    print(f"{title}{how}:")
    total, took_all = 0, 0.0
    for ref in refs:
        start = time.monotonic()
        archive = images.build([ref], force=rebuild)[images.normalize(ref)]
        took = time.monotonic() - start
        took_all += took
        size = archive.stat().st_size
        total += size
        print(f"  {ref:<52} {size / 1e6:7.1f} MB {took:6.1f} s")
    print(f"  {'total':<52} {total / 1e6:7.1f} MB {took_all:6.1f} s")
    return took_all


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


def pod_usage(cluster: Cluster, namespaces: list[str]) -> None:
    from kubernetes import client

    api = cluster.api()
    core = client.CoreV1Api(api)
    usage: dict[tuple[str, str], Any] = {}
    for node in core.list_node().items:
        summary: dict[str, Any] = api.call_api(
            f"/api/v1/nodes/{node.metadata.name}/proxy/stats/summary", "GET", auth_settings=["BearerToken"],
            response_type="object", _return_http_data_only=True)
        usage.update({(p["podRef"]["namespace"], p["podRef"]["name"]): p for p in summary.get("pods", [])})
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
    parser.add_argument("--provider", choices=("netns", "kind"), default="netns")
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--name", default="homeci-bench")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rebuild-images", action="store_true", help="Rebuild every image (force).")
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    args = parser.parse_args()
    missing = prereqs.check(args.provider)
    if missing:
        raise SystemExit(prereqs.explain(args.provider, missing))

    recipes = {name for r in images.RECIPES for name in r.tools} - set(KIND_ADDS)
    build_times((*NODE_TOOLS, *sorted(recipes - set(NODE_TOOLS))))
    image_figures(sorted({*default_images(), images.PAUSE_IMAGE, images.COREDNS_IMAGE}), args.rebuild_images,
                  "images built from source (the stack's, the real node's)")
    cluster = make(args.provider, args.name, nodes=args.nodes)
    if args.provider == "kind":
        print("what kind adds to the real node's toolchain and images:")
        build_times(KIND_ADDS)
        if cluster.image_source == "source":
            kind_images = [images.KIND_NODE_IMAGE, images.ETCD_IMAGE, *images.KUBE_IMAGES]
            image_figures(kind_images, args.rebuild_images, "kind's offline node image and kubeadm's images")
    cluster.down()
    try:
        timed(f"{args.provider} up (create → nodes Ready, DNS answering)", lambda: cluster.up(timeout=600))
        done = timed("stack: images, umbrella, drone-pipelines, base images", lambda: install_stack(cluster))
        timed("stack again, same values (no-op upgrade)", lambda: install_stack(cluster, pipelines=False))
        with tempfile.TemporaryDirectory(prefix="homeci-bench-") as tmp:
            app = driver.App(source=sample_app(), owner=done.stack.admin_user, name="sample-app",
                             namespace=TARGET, host=f"sample-app.{done.stack.domain}")
            rounds = driver.run(done.stack, app, Path(tmp), rounds=args.rounds)
            Console(width=160).print(report(rounds))
        pod_usage(cluster, ["homeci", "kube-system", TARGET])
    finally:
        if not args.keep:
            timed(f"{args.provider} down", lambda: cluster.down())


if __name__ == "__main__":
    main()
