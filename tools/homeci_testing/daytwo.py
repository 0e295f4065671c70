"""Test support for the day-two tier (tests/daytwo): the previous release packaged, what an operator checks
before and after an operation (the stack's data, its pods and their volumes, its generated Secrets), a
prober that measures how long an app stops answering, and waits for a stack to be Ready again."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from rich.table import Table

from homeci import kubeaccess, release
from homeci.cluster.install import Installed
from homeci.cluster.netns import NetnsCluster
from homeci.flow import driver
from homeci.flow.stack import Stack
from homeci.helm import Helm
from homeci_testing import chartrepo
from homeci_testing.support import ROOT

NAMESPACE = "homeci"


def progress(prefix: str) -> Callable[[str], None]:
    """Progress lines ``[prefix  12s] ...`` (the tier runs with -s: the log shows where time goes)."""
    start = time.monotonic()
    return lambda line: print(f"[{prefix} {time.monotonic() - start:5.0f}s] {line}", flush=True)


def phases(rnd: driver.Round) -> list[tuple[str, str, str]]:
    return [(p.name, p.status, p.detail[:400]) for p in rnd.phases]


@dataclass
class DayTwo:
    """The day-two node, its stack and the sample app's pushes."""

    cluster: NetnsCluster
    installed: Installed
    app: driver.App
    repo: Path
    previous: PreviousRelease
    workdir: Path
    rounds: list[driver.Round] = field(default_factory=list)

    @property
    def stack(self) -> Stack:
        st: Stack = self.installed.stack
        return st

    @property
    def served(self) -> str:
        """The version the app serves (the last successful push's)."""
        return next(r.version for r in reversed(self.rounds) if r.ok)

    def push(self, label: str, *, timeout: float = 900) -> driver.Round:
        """One more round of the sample app (a new version), recorded."""
        version = f"1.0.{len(self.rounds) + 1}-{label}.{time.strftime('%H%M%S')}"
        rnd = driver.deliver(self.stack, self.app, self.repo, version, timeout=timeout,
                             progress=progress(f"push {label}"))
        self.rounds.append(rnd)
        return rnd


# -- the previous release ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreviousRelease:
    """The previous release as the chart-repository upgrade test picks it (newest v-tag, else the commit
    in toolchain/release.toml), packaged: what an operator has installed from the repository."""

    label: str  # its version (``<version>-git.<commit>`` before the first release)
    baseline: release.Baseline
    umbrella: Path  # packaged .tgz
    pipelines: Path


def previous_release(workdir: Path) -> PreviousRelease:
    baseline = release.previous_release(ROOT)
    old = release.export_charts(ROOT, baseline.commit, workdir / "previous")
    label = chartrepo.previous_label(baseline, old, release.next_version(ROOT))
    helm, out = Helm(3), workdir / "packaged"
    archives = [helm.package(chartrepo.stage(old / name, workdir / "staged", label), out)
                for name in (chartrepo.UMBRELLA, chartrepo.PIPELINES)]
    return PreviousRelease(label, baseline, archives[0], archives[1])


# -- what an operator checks ---------------------------------------------------------------------------

def ca_fingerprint(st: Stack) -> str:
    der = ssl.PEM_cert_to_DER_cert(st.ca_file.read_text())
    return hashlib.sha256(der).hexdigest()


def stack_state(st: Stack, app: driver.App) -> dict[str, Any]:
    """What a user would check after an upgrade, a reboot or a restore, read through the public names."""
    gogs, drone, registry = driver.clients(st)
    owner, name = app.owner, app.name
    repos = gogs._call("GET", "/user/repos") or []
    branch = gogs._call("GET", f"/repos/{owner}/{name}/branches/{driver.DEPLOY_BRANCH}") or {}
    builds = drone.builds(owner, name)
    repo = drone.call("GET", f"/repos/{owner}/{name}")
    secrets = drone.call("GET", f"/repos/{owner}/{name}/secrets") or []
    org = drone.call("GET", f"/secrets/{owner}", ok=(200, 404)) or []
    tags = registry.web.request("GET", f"{registry.base}/v2/{owner}/{name}/tags/list",
                                headers=registry._auth()).json() or {}
    return {
        "CA fingerprint (SHA-256)": ca_fingerprint(st),
        "Gogs repositories": sorted(r["full_name"] for r in repos),
        f"Gogs {owner}/{name} {driver.DEPLOY_BRANCH} head": (branch.get("commit") or {}).get("id"),
        "Drone builds (number status commit)": sorted(
            (f"#{b['number']} {b['status']} {str(b.get('after'))[:12]}" for b in builds),
            key=lambda s: int(s.split()[0][1:])),
        "Drone repository active": bool(repo.get("active")),
        "Drone repository secrets": sorted(s["name"] for s in secrets),
        "Drone organisation secrets": sorted(s["name"] for s in org),
        "registry tags of the app": sorted(tags.get("tags") or []),
        "admin password accepted by Gogs": bool(gogs.token()),
    }


def state_table(title: str, columns: tuple[str, str], before: dict[str, Any], after: dict[str, Any]) -> Table:
    table = Table("what", *columns, "same", title=title)
    for key in before:
        b, a = before[key], after.get(key)
        table.add_row(key, _show(b), _show(a), "yes" if a == b else "NO")
    return table


def _show(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else str(value)


@dataclass
class PodFacts:
    """One pod of a workload and the volumes it runs on."""

    workload: str  # Deployment/<name>, DaemonSet/<name>
    pod: str
    uid: str
    restarts: int
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (claim uid, PV name)


STACK_NAMESPACES = (NAMESPACE, "homeci-node-trust")


def workload_pods(api: Any, namespaces: tuple[str, ...] = STACK_NAMESPACES) -> dict[str, PodFacts]:
    """Workload -> its (running) pod, with the claims it mounts and the PersistentVolume each is bound to."""
    core = client.CoreV1Api(api)
    out: dict[str, PodFacts] = {}
    for ns in namespaces:
        claims = {c.metadata.name: (c.metadata.uid, c.spec.volume_name or "")
                  for c in core.list_namespaced_persistent_volume_claim(ns).items}
        for pod in core.list_namespaced_pod(ns).items:
            if pod.status.phase in ("Succeeded", "Failed") or pod.metadata.deletion_timestamp:
                continue
            owner = _workload(api, pod)
            if owner is None:
                continue
            mounted = {v.persistent_volume_claim.claim_name for v in pod.spec.volumes or []
                       if v.persistent_volume_claim}
            out[owner] = PodFacts(owner, pod.metadata.name, pod.metadata.uid,
                                  sum(cs.restart_count for cs in pod.status.container_statuses or []),
                                  {c: claims.get(c, ("?", "?")) for c in sorted(mounted)})
    return out


def _workload(api: Any, pod: Any) -> str | None:
    refs = pod.metadata.owner_references or []
    if not refs:
        return None
    ref = refs[0]
    if ref.kind == "ReplicaSet":
        rs = client.AppsV1Api(api).read_namespaced_replica_set(ref.name, pod.metadata.namespace)
        owners = rs.metadata.owner_references or []
        return f"Deployment/{owners[0].name}" if owners else f"ReplicaSet/{ref.name}"
    if ref.kind in ("DaemonSet", "StatefulSet"):
        return f"{ref.kind}/{ref.name}"
    return None


def pods_table(title: str, before: dict[str, PodFacts], after: dict[str, PodFacts]) -> Table:
    table = Table("workload", "pod before → after", "restarted", "volumes (claim → PersistentVolume)",
                  "same volumes", title=title)
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if b and a:
            more = a.restarts - b.restarts
            restarted = "new pod" if a.uid != b.uid else f"in place ({more} restart(s))" if more > 0 else "no"
            same = "yes" if a.claims == b.claims else "NO"
        else:
            restarted, same = ("added" if a else "gone"), "-"
        facts = a or b
        volumes = "\n".join(f"{c} → {pv}" for c, (_, pv) in facts.claims.items()) if facts else ""
        table.add_row(name, f"{b.pod if b else '-'} → {a.pod if a else '-'}", restarted, volumes or "-", same)
    return table


def generated_secrets(api: Any, namespace: str = NAMESPACE) -> dict[str, dict[str, str]]:
    """Secret name -> data, without Helm's release records and ServiceAccount tokens."""
    items = client.CoreV1Api(api).list_namespaced_secret(namespace).items
    return {s.metadata.name: dict(s.data or {}) for s in items
            if s.type not in ("helm.sh/release.v1", "kubernetes.io/service-account-token")}


def wait_routed(st: Stack, *, timeout: float = 120) -> None:
    """Until Gogs and Drone answer through Traefik again. After a boot the app may already be served while
    Traefik still answers ``404 page not found`` for a host whose endpoints it has not seen yet."""
    def check() -> str | None:
        for component in ("git", "ci"):
            answer = st.web.request("GET", st.url(component) + "/", timeout=10)
            # Gogs' home page is 200; Drone's UI may answer with a redirect to its login
            if answer.status >= 400 or (component == "git" and answer.status != 200):
                return f"{st.url(component)}: HTTP {answer.status}"
        return None

    kubeaccess.wait_for("Gogs and Drone through Traefik", check, timeout=timeout, interval=1)


def same_htpasswd_login(before: dict[str, str], after: dict[str, str]) -> str | None:
    """Why the registry's credentials Secret (data, base64) no longer lets the same user in with the same
    password, or None. The htpasswd line itself may change: the rehash hook remakes Helm's bcrypt cost-10
    line at ``registry.auth.bcryptCost`` once (an upgrade from a release without the hook does that)."""
    import base64

    import bcrypt

    def text(data: dict[str, str], key: str) -> str:
        return base64.b64decode(data.get(key, "")).decode()

    for key in ("username", "password"):
        if text(after, key) != text(before, key):
            return f"{key} changed"
    user, _, hashed = text(after, "htpasswd").strip().partition(":")
    if user != text(after, "username"):
        return f"the htpasswd line is for {user!r}, not {text(after, 'username')!r}"
    if not bcrypt.checkpw(text(after, "password").encode(), hashed.encode()):
        return "the htpasswd line does not accept the kept password"
    return None


def homeci_status(kubeconfig: Path | str) -> tuple[int, str]:
    """``homeci status`` as an operator runs it (a terminal 200 columns wide): exit code and output."""
    proc = subprocess.run([sys.executable, "-c", "from homeci.cli import main; main()", "status",
                           "--kubeconfig", str(kubeconfig)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


# -- an app that keeps answering ------------------------------------------------------------------------

class Prober:
    """Requests ``url`` every ``interval`` seconds in a thread while the ``with`` block runs and records
    each answer; :meth:`longest_gap` is the longest time the app did not answer with HTTP 200."""

    def __init__(self, st: Stack, url: str, *, interval: float = 0.25, timeout: float = 2.0) -> None:
        self.st, self.url, self.interval, self.timeout = st, url, interval, timeout
        self.samples: list[tuple[float, bool, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prober")

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                resp = self.st.web.request("GET", self.url, timeout=self.timeout)
                ok, what = resp.status == 200, f"HTTP {resp.status}"
            except Exception as exc:  # any failure to answer is a gap
                ok, what = False, type(exc).__name__ + ": " + str(exc)[:80]
            self.samples.append((at, ok, what))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - at)))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def longest_gap(self) -> tuple[float, str]:
        """(seconds, what the failures were): from the last good answer before a run of failures to the
        first good one after it (to the end of probing if none came)."""
        worst, why, last_ok, first_bad = 0.0, "", None, None
        failures: list[str] = []
        for at, ok, what in self.samples:
            if ok:
                if first_bad is not None:
                    gap = at - (last_ok if last_ok is not None else first_bad)
                    if gap > worst:
                        worst, why = gap, "; ".join(sorted(set(failures)))[:300]
                last_ok, first_bad, failures = at, None, []
            else:
                first_bad = at if first_bad is None else first_bad
                failures.append(what)
        if first_bad is not None and self.samples:
            gap = self.samples[-1][0] - (last_ok if last_ok is not None else first_bad)
            if gap > worst:
                worst, why = gap, "; ".join(sorted(set(failures)))[:300] + " (until the end)"
        return worst, why

    def summary(self) -> str:
        good = sum(1 for _, ok, _ in self.samples if ok)
        gap, why = self.longest_gap()
        span = self.samples[-1][0] - self.samples[0][0] if self.samples else 0.0
        return (f"{good}/{len(self.samples)} requests answered over {span:.0f}s; longest gap {gap:.1f}s"
                + (f" ({why})" if why else ""))


def app_url(st: Stack, app: driver.App) -> str:
    return f"https://{app.host}" + ("" if st.https_port == 443 else f":{st.https_port}") + "/"


# -- waiting for a stack -----------------------------------------------------------------------------

READY_NAMESPACES = (NAMESPACE, "homeci-node-trust", "kube-system", "apps")


def unready(api: Any, *, since: dt.datetime | None = None) -> list[str]:
    """The workloads of the stack, the app and CoreDNS that are not Ready: empty when all are. With
    ``since`` (a boot), each of their pods must also have turned Ready after it: the statuses written before
    a shutdown still say Ready until the node reports again."""
    apps = client.AppsV1Api(api)
    waiting = []
    for ns in READY_NAMESPACES:
        for d in apps.list_namespaced_deployment(ns).items:
            if (d.status.ready_replicas or 0) < (d.spec.replicas or 0) or \
                    (d.status.updated_replicas or 0) < (d.spec.replicas or 0):
                waiting.append(f"Deployment {ns}/{d.metadata.name} {d.status.ready_replicas or 0}/"
                               f"{d.spec.replicas}")
    selector = "app.kubernetes.io/instance=homeci"
    for ds in apps.list_daemon_set_for_all_namespaces(label_selector=selector).items:
        if (ds.status.number_ready or 0) < (ds.status.desired_number_scheduled or 0):
            waiting.append(f"DaemonSet {ds.metadata.namespace}/{ds.metadata.name}")
    if since is not None:
        core = client.CoreV1Api(api)
        for ns in READY_NAMESPACES:
            for pod in core.list_namespaced_pod(ns).items:
                if pod.status.phase in ("Succeeded", "Failed") or not pod.metadata.owner_references:
                    continue
                ready = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
                if not ready or ready.status != "True" or ready.last_transition_time < since:
                    waiting.append(f"Pod {ns}/{pod.metadata.name} not Ready since the boot")
    return waiting


def wait_ready(api: Any, *, timeout: float, since: dt.datetime | None = None) -> float:
    """Seconds until every workload of the stack is Ready (raises with what is not after ``timeout``)."""
    started = time.monotonic()
    kubeaccess.wait_for("the stack's workloads", lambda: ", ".join(unready(api, since=since)) or None,
                        timeout=timeout, interval=0.5)
    return time.monotonic() - started


def step_images(app_source: Path) -> list[str]:
    """The images an app's ``.drone.yml`` names itself (``image``, ``*_image`` values, e.g. the template's
    ``test_image``), normalised. A previous release's charts name older step images than the working tree's
    sample app, so its node needs these too."""
    import yaml

    from homeci import images

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and (key == "image" or str(key).endswith("_image")):
                    found.add(images.normalize(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for doc in yaml.safe_load_all((app_source / ".drone.yml").read_text()):
        walk(doc)
    return sorted(found)
