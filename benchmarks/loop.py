"""push → served on a running stack: the first push of a new app and N warm pushes (a script that prints
figures, not a timed test).

    .venv/bin/python benchmarks/loop.py --kubeconfig KUBECONFIG [--connect 127.0.0.1:PORT] [--warm 3]
                                        [--name loop-<time>] [--keep-app]

Pushes the sample app as a repository of a new name (so the first push creates a new app: new Gogs
repository, new registry repository, new Deployment, Service and Ingress), then ``--warm`` more pushes
of it, each a new version. Prints the `homeci smoke` tables (Drone's phases and where the time goes:
push → served as consecutive wait/work segments), then the summary: the first push, the median of the
warm pushes, the median of each segment over the warm pushes, and the machine's load average before and
after (the figures mean little without it: other work on the same cores slows every segment).
The new app is deleted at the end (Gogs repository and its objects), unless --keep-app.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from homeci import kubeaccess
from homeci.commands.smoke import _web_factory, path_report, report
from homeci.flow import driver, stack, timeline
from homeci.paths import sample_app


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def summary(rounds: list[driver.Round]) -> list[str]:
    """The lines the docs quote: first push, warm median, per-segment medians of the warm pushes."""
    def total(rnd: driver.Round) -> float:
        return next(p.seconds or 0.0 for p in rnd.phases if p.name == "total")

    done = [r for r in rounds if r.ok]
    lines = []
    if done and rounds[0].ok:
        wait, work = timeline.totals(rounds[0].path)
        lines.append(f"first push (new app): {total(rounds[0]):.1f} s "
                     f"(waiting {wait:.1f}, working {work:.1f})")
    warm = done[1:]
    if not warm:
        return lines
    totals = [total(r) for r in warm]
    waits = [timeline.totals(r.path)[0] for r in warm if r.path]
    works = [timeline.totals(r.path)[1] for r in warm if r.path]
    lines.append(f"warm pushes: median {statistics.median(totals):.1f} s of {len(totals)} "
                 f"({', '.join(f'{t:.1f}' for t in totals)})"
                 + (f"; waiting {statistics.median(waits):.1f}, working {statistics.median(works):.1f}"
                    if waits else ""))
    names: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    for rnd in warm:
        for seg in rnd.path:
            names.setdefault(seg.name, []).append(seg.seconds)
            kinds[seg.name] = seg.kind
    for name, values in names.items():
        lines.append(f"  {name:<44} {statistics.median(values):6.2f} s  {kinds[name]}")
    return lines


def cleanup(st: stack.Stack, app: driver.App) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    gogs, _, _ = driver.clients(st)
    gogs.delete_repo(app.owner, app.name)
    calls = (client.AppsV1Api(st.kube).delete_namespaced_deployment,
             client.CoreV1Api(st.kube).delete_namespaced_service,
             client.NetworkingV1Api(st.kube).delete_namespaced_ingress)
    for delete in calls:
        try:
            delete(app.name, app.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=None)
    parser.add_argument("--connect", default=None, metavar="127.0.0.1:PORT",
                        help="Loopback port standing in for the public names (`homeci cluster up` says it).")
    parser.add_argument("--namespace", default="homeci")
    parser.add_argument("--release", default="homeci")
    parser.add_argument("--target", default="apps", help="Namespace the pipeline deploys to.")
    parser.add_argument("--warm", type=int, default=3, help="Pushes after the first.")
    parser.add_argument("--name", default=f"loop-{time.strftime('%H%M%S')}", help="The new app's name.")
    parser.add_argument("--keep-app", action="store_true", help="Leave the new app (repository, objects).")
    parser.add_argument("--marks", type=Path, default=None,
                        help="Write what the watch saw (every mark of every round) to this JSON file.")
    args = parser.parse_args()

    from kubernetes import client

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  before: {load()}", flush=True)
    api = kubeaccess.api_client(args.kubeconfig)
    with tempfile.TemporaryDirectory(prefix="homeci-loop-") as tmp:
        work = Path(tmp)
        st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), args.namespace,
                                args.release, work, _web_factory(args.connect))
        if args.connect:
            st.https_port = int(args.connect.rpartition(":")[2])
            st.git_resolve = [f"{h}:{st.https_port}:127.0.0.1" for h in st.hosts.values()]
        app = driver.App(source=sample_app(), owner=st.admin_user, name=args.name, namespace=args.target,
                         host=f"{args.name}.{st.domain}")
        try:
            rounds = driver.run(st, app, work, rounds=1 + args.warm,
                                progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
        finally:
            if not args.keep_app:
                cleanup(st, app)
    console = Console(width=160)
    console.print(report(rounds))
    console.print(path_report(rounds))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  after: {load()}")
    if args.marks:
        marks = [[dataclasses.asdict(m) for m in r.marks] for r in rounds]
        args.marks.write_text(json.dumps(marks, indent=1))
    for line in summary(rounds):
        print(line)


if __name__ == "__main__":
    main()
