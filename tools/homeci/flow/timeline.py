"""Where one push's time goes: what the cluster did, stamped with this machine's clock.

Drone stamps steps in whole seconds and Kubernetes stamps container states in whole seconds too, so
neither can say whether a 9-second deploy step was kubectl or a readiness probe. :class:`Watch`
follows, during one round, the step pods in the build namespace, the app's pods, EndpointSlices
and Deployments in its namespace (Kubernetes watches, one thread each) and records when each fact
first took a value (:class:`Mark`). :func:`critical_path` then cuts push → served into consecutive
segments, each *wait* (nothing of the user's runs: runner hand-offs, container starts, probes,
endpoint propagation) or *work* (clone, the test commands, kaniko, kubectl), that add up to the total.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# A watch is re-opened this often (the server closes it), so stop() returns within about as long.
WATCH_SECONDS = 5


@dataclass(frozen=True)
class Mark:
    """Fact ``key`` of object ``subject`` (``pod/<name>``, ``slice/<name>``, ...) took ``value`` at ``t``."""

    t: float
    namespace: str
    subject: str
    key: str
    value: str


@dataclass
class Segment:
    """One piece of the critical path (``kind`` wait or work) or a figure beside it (kind info)."""

    name: str
    seconds: float
    kind: str  # "wait" | "work" | "info"
    detail: str = ""


def _container_facts(pod: Any) -> dict[str, str]:
    """Per step container: its image in the spec, and its state with the image it runs."""
    facts: dict[str, str] = {}
    spec = {c.name: c for c in pod.spec.containers or []}
    for name, c in spec.items():
        # The runner names each step's container by a random id; DRONE_STEP_NAME says which step it
        # is, except on the clone step, which has no such variable.
        step = next((e.value for e in c.env or [] if e.name == "DRONE_STEP_NAME"), None) or "clone"
        facts[f"step:{name}"] = step
        facts[f"image:{name}"] = c.image or ""
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        state = cs.state
        if state is None:
            continue
        if state.terminated is not None:
            now = f"terminated {state.terminated.exit_code}"
        elif state.running is not None:
            now = "running"
        else:
            now = "waiting"
        facts[f"state:{cs.name}"] = f"{now} {cs.image}"
        facts[f"ready:{cs.name}"] = str(bool(cs.ready))
    return facts


def pod_facts(pod: Any) -> dict[str, str]:
    facts = {"exists": "yes"}
    labels = pod.metadata.labels or {}
    build = labels.get("io.drone.build.number")
    if build:
        # Drone numbers builds per repository: the repository's labels (slugs) tell two build #1s apart.
        facts["build"] = build
        facts["repo"] = f"{labels.get('io.drone.repo.namespace', '')}/{labels.get('io.drone.repo.name', '')}"
    for cond in (pod.status.conditions or []) if pod.status else []:
        if cond.type in ("PodScheduled", "Ready"):
            facts[cond.type] = str(cond.status)
    if pod.metadata.deletion_timestamp is not None:
        facts["terminating"] = "yes"
    facts.update(_container_facts(pod))
    return facts


def slice_facts(eps: Any) -> dict[str, str]:
    facts = {"exists": "yes"}
    for ep in eps.endpoints or []:
        ref = ep.target_ref
        if ref is not None and ref.kind == "Pod":
            ready = ep.conditions.ready if ep.conditions is not None else None
            facts[f"ready:{ref.name}"] = str(ready is not False)
    return facts


def deployment_facts(dep: Any) -> dict[str, str]:
    return {"exists": "yes", "generation": str(dep.metadata.generation)}


class Watch:
    """Record what the cluster does in the build namespace and the app's namespace until :meth:`stop`."""

    def __init__(self, api_client: Any, build_namespace: str, app_namespace: str) -> None:
        from kubernetes import client

        core = client.CoreV1Api(api_client)
        apps = client.AppsV1Api(api_client)
        discovery = client.DiscoveryV1Api(api_client)
        self.marks: list[Mark] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._seen: dict[tuple[str, str], dict[str, str]] = {}
        self._sources: list[tuple[str, Callable[..., Any], Callable[[Any], dict[str, str]], str]] = [
            (build_namespace, core.list_namespaced_pod, pod_facts, "pod"),
            (app_namespace, core.list_namespaced_pod, pod_facts, "pod"),
            (app_namespace, discovery.list_namespaced_endpoint_slice, slice_facts, "slice"),
            (app_namespace, apps.list_namespaced_deployment, deployment_facts, "deployment"),
        ]
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = []
        for source in self._sources:
            listed = threading.Event()
            ready.append(listed)
            thread = threading.Thread(target=self._follow, args=(*source, listed), daemon=True,
                                      name=f"homeci-watch-{source[3]}-{source[0]}")
            thread.start()
            self._threads.append(thread)
        for listed in ready:  # the objects that exist before the push are known before it
            listed.wait(timeout=10)

    def stop(self) -> None:
        self._stopped.set()

    def _record(self, t: float, namespace: str, subject: str, facts: dict[str, str]) -> None:
        with self._lock:
            before = self._seen.get((namespace, subject), {})
            for key, value in facts.items():
                if before.get(key) != value:
                    self.marks.append(Mark(t, namespace, subject, key, value))
            self._seen[(namespace, subject)] = facts

    def _follow(self, namespace: str, lister: Callable[..., Any], facts: Callable[[Any], dict[str, str]],
                kind: str, listed: threading.Event) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version = ""
        while not self._stopped.is_set():
            try:
                if not version:
                    items = lister(namespace)
                    now = time.time()
                    for obj in items.items:
                        self._record(now, namespace, f"{kind}/{obj.metadata.name}", facts(obj))
                    version = items.metadata.resource_version
                    listed.set()
                w = watch.Watch()
                for event in w.stream(lister, namespace, resource_version=version,
                                      timeout_seconds=WATCH_SECONDS, _request_timeout=WATCH_SECONDS + 5):
                    now = time.time()
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    subject = f"{kind}/{obj.metadata.name}"
                    if event["type"] == "DELETED":
                        self._record(now, namespace, subject, {"exists": "no"})
                    else:
                        self._record(now, namespace, subject, facts(obj))
                    if self._stopped.is_set():
                        w.stop()
            except ApiException as exc:
                if exc.status == 410:  # too old: list again
                    version = ""
                    continue
                self.errors.append(f"watch {kind}s in {namespace}: {exc.status} {exc.reason}")
                listed.set()
                return
            except Exception as exc:  # a lost watch costs sub-phases, never the round
                if self._stopped.is_set():
                    return
                self.errors.append(f"watch {kind}s in {namespace}: {exc}")
                time.sleep(0.2)

    def snapshot(self) -> list[Mark]:
        with self._lock:
            return list(self.marks)


# --- reading the marks --------------------------------------------------------------------------


def first(marks: Iterable[Mark], subject: str, key: str, test: Callable[[str], bool],
          after: float = 0.0) -> Mark | None:
    for m in marks:
        if m.subject == subject and m.key == key and m.t >= after and test(m.value):
            return m
    return None


def step_pod(marks: list[Mark], namespace: str, build_number: int, repo: str = "") -> str | None:
    """The step pod of build ``build_number`` (label ``io.drone.build.number``) in the build namespace; with
    ``repo`` (``owner/name``), of that repository only (labels ``io.drone.repo.namespace``/``.name``, which
    the runner writes as lower-case slugs)."""
    pods = {m.subject for m in marks
            if m.namespace == namespace and m.key == "build" and m.value == str(build_number)}
    if repo:
        pods = {m.subject for m in marks if m.subject in pods and m.key == "repo" and m.value == repo.lower()}
    for m in marks:  # the first seen, as before
        if m.subject in pods:
            return m.subject
    return None


@dataclass
class StepTimes:
    step: str
    swapped: float | None = None
    running: float | None = None
    terminated: float | None = None
    exit_code: str = ""


def step_times(marks: list[Mark], pod: str) -> list[StepTimes]:
    """Each step container of ``pod``: when its image was swapped in (the runner creates every container
    from the placeholder image), when it ran that image, when it ended; in the order they ran."""
    mine = [m for m in marks if m.subject == pod]
    created = first(mine, pod, "exists", lambda v: v == "yes")
    steps: dict[str, StepTimes] = {}
    for m in mine:
        kind, _, name = m.key.partition(":")
        if kind == "step":
            steps.setdefault(name, StepTimes(m.value)).step = m.value
    initial = [next(m.value for m in mine if m.key == f"image:{name}") for name in steps
               if any(m.key == f"image:{name}" for m in mine)]
    # Every container is created from the runner's placeholder image; one that kept it never ran its step.
    common = Counter(initial).most_common(1)
    placeholder = common[0][0] if common and common[0][1] > 1 else ""
    for name, st in steps.items():
        images = [m for m in mine if m.key == f"image:{name}"]
        if not images or (len(images) == 1 and images[0].value == placeholder):
            continue
        image = images[-1].value
        st.swapped = images[1].t if len(images) > 1 else (created.t if created else None)
        after = st.swapped or 0.0
        for m in mine:
            if m.key != f"state:{name}" or m.t < after:
                continue
            state, _, rest = m.value.partition(" ")
            code, _, ran = rest.partition(" ") if state == "terminated" else ("", "", rest)
            if not _same_image(ran, image):
                continue  # the placeholder's own states
            if state == "running" and st.running is None:
                st.running = m.t
            elif state == "terminated" and st.terminated is None:
                st.terminated = m.t
                st.exit_code = code
                if st.running is None:  # too short to be seen running
                    st.running = m.t
    return sorted((s for s in steps.values() if s.running is not None), key=lambda s: s.running or 0)


def _same_image(status_image: str, spec_image: str) -> bool:
    """The status names the image the way the runtime resolved it (``docker.io/library/x`` for ``x``,
    sometimes with the digest): compare repository and tag without the default registry."""
    def norm(ref: str) -> str:
        ref = ref.split("@", 1)[0]
        for prefix in ("docker.io/library/", "docker.io/"):
            if ref.startswith(prefix):
                ref = ref[len(prefix):]
        return ref
    return norm(status_image) == norm(spec_image) or status_image.endswith(spec_image)


KANIKO_PHASES = (
    ("Retrieving Source Image", "kaniko: base image (mirror)"),
    ("FS Unpacking", "kaniko: unpack base"),
    ("Initial FS snapshot", "kaniko: initial snapshot"),
    ("Snapshotting FS", "kaniko: snapshots"),
    ("Total Push Time", "kaniko: push"),
)


def kaniko_timings(log: str) -> dict[str, float]:
    """The timing JSON kaniko writes to BENCHMARK_FILE (the template points it at the step's log):
    category → seconds."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if line.startswith("{") and "Total Build Time" in line:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            return {str(k): float(v) / 1e9 for k, v in data.items() if isinstance(v, (int, float))}
    return {}


def kaniko_segments(timings: dict[str, float]) -> list[Segment]:
    rows = [Segment(label, timings[key], "info") for key, label in KANIKO_PHASES if key in timings]
    commands = {k[len("Command: "):]: v for k, v in timings.items() if k.startswith("Command: ")}
    if commands:
        rows.insert(min(2, len(rows)), Segment("kaniko: Dockerfile commands", sum(commands.values()), "info",
                                               ", ".join(f"{re.sub(r' +', ' ', k)[:24]} {v:.2f}"
                                                         for k, v in commands.items())))
    return rows


@dataclass
class Inputs:
    """What :func:`critical_path` needs besides the marks."""

    pushed: float
    served: float | None
    build_created: float | None
    build_number: int
    build_namespace: str
    app_namespace: str
    deployment: str
    steps: list[str]  # Drone's step names in order
    kaniko: dict[str, float] = field(default_factory=dict)
    repo: str = ""  # owner/name: another repository's build of the same number is not this one


def critical_path(marks: list[Mark], inp: Inputs) -> list[Segment]:
    """push → served as consecutive wait/work segments (they add up), plus info rows beside them."""
    out: list[Segment] = []
    cursor = inp.pushed

    def seg(name: str, until: float | None, kind: str, detail: str = "") -> None:
        nonlocal cursor
        if until is None:
            return
        out.append(Segment(name, max(0.0, until - cursor), kind, detail))
        cursor = max(cursor, until)

    if inp.build_created is not None:
        seg("webhook: push → Drone build", inp.build_created, "wait", "Drone stamps whole seconds")
    pod = step_pod(marks, inp.build_namespace, inp.build_number, inp.repo)
    if pod is None:
        return out
    created = first(marks, pod, "exists", lambda v: v == "yes")
    seg("runner: accept stage, create step pod", created.t if created else None, "wait")
    scheduled = first(marks, pod, "PodScheduled", lambda v: v == "True")
    steps = step_times(marks, pod)
    if not steps:
        return out
    detail = f"scheduled +{scheduled.t - cursor:.1f}s" if scheduled else ""
    deploy_running: float | None = None
    path = on_path(steps)
    beside = [s for s in steps if s not in path]
    for i, st in enumerate(path):
        if i == 0:
            seg(f"{st.step}: pod sandbox, container start", st.running, "wait", detail)
        else:
            seg(f"{st.step}: runner hand-off (image swap)", st.swapped, "wait",
                f"{path[i - 1].step}'s end seen → this step's image set")
            seg(f"{st.step}: container start", st.running, "wait")
        if st.step == "deploy":
            deploy_running = st.running
            break
        name = {"clone": "clone: git fetch", "build": "build: kaniko"}.get(st.step, f"{st.step}: commands")
        seg(name, st.terminated, "work", f"exit {st.exit_code}")
        if st.step == "build" and inp.kaniko:
            out.extend(kaniko_segments(inp.kaniko))
        for other in beside:  # steps that ran next to this one (parallel_build) and ended first
            if other.terminated is not None and other.running is not None and _beside(path, other) == i:
                out.append(Segment(f"{other.step}: ran beside {st.step}", other.terminated - other.running,
                                   "info", f"exit {other.exit_code}; ended first, off the critical path"))
        if st.terminated is None:
            return out
    if deploy_running is None:
        return out
    rollout = _rollout(marks, inp, deploy_running)
    seg("deploy: kubectl checks, apply", rollout.get("updated"), "work",
        "auth can-i, kustomize, apply (each kubectl call discovers the API)")
    seg("rollout: new pod created", rollout.get("pod"), "wait", "Deployment → ReplicaSet → Pod controllers")
    seg("rollout: schedule, pull, start", rollout.get("running"), "wait", rollout.get("pod_name", ""))
    seg("rollout: readiness probe", rollout.get("ready"), "wait")
    if inp.served is not None:
        endpoint = rollout.get("endpoint")
        extra = f"endpoint ready +{endpoint - cursor:.1f}s" if endpoint is not None else ""
        seg("Traefik: new endpoint answers", inp.served, "wait", extra)
    deploy = next((s for s in steps if s.step == "deploy"), None)
    if deploy is not None and deploy.terminated is not None and rollout.get("ready") is not None:
        out.append(Segment("deploy: rollout status returns", deploy.terminated - rollout["ready"], "info",
                           "after the new pod was Ready (off the critical path when served first)"))
    return out


def on_path(steps: list[StepTimes]) -> list[StepTimes]:
    """The steps push → served waited on, in order: from the last step back, each step's predecessor is
    the one that ended last before its image was swapped in. Serial steps are all on it; of steps that
    ran side by side (``parallel_build``: test beside build) only the one that ended later is."""
    if not steps:
        return []
    chain = [steps[-1]]
    while True:
        cur = chain[0]
        if cur.swapped is None:
            break
        ended = [s for s in steps if s not in chain and s.terminated is not None
                 and s.terminated <= cur.swapped + 0.001]
        if not ended:
            break
        chain.insert(0, max(ended, key=lambda s: s.terminated or 0.0))
    return chain


def _beside(path: list[StepTimes], other: StepTimes) -> int:
    """The index of the path step ``other`` ran beside: the first one that ended after it started."""
    for i, st in enumerate(path):
        if st.terminated is None or other.running is None or st.terminated >= other.running:
            return i
    return len(path) - 1


def _rollout(marks: list[Mark], inp: Inputs, since: float) -> dict[str, Any]:
    """The Deployment's update and its new pod after ``since`` (the deploy container running)."""
    ns = inp.app_namespace
    found: dict[str, Any] = {}
    dep = f"deployment/{inp.deployment}"
    updated = first(marks, dep, "generation", lambda v: True, after=since)
    if updated is not None:
        found["updated"] = updated.t
    new_pods = [m for m in marks if m.namespace == ns and m.subject.startswith("pod/") and m.key == "exists"
                and m.value == "yes" and m.t >= since]
    if not new_pods:
        return found
    pod = new_pods[0]
    found["pod"] = pod.t
    found["pod_name"] = pod.subject
    running = first(marks, pod.subject, "state:" + inp.deployment, lambda v: v.startswith("running"))
    if running is None:
        running = next((m for m in marks if m.subject == pod.subject and m.key.startswith("state:")
                        and m.value.startswith("running")), None)
    if running is not None:
        found["running"] = running.t
    ready = first(marks, pod.subject, "Ready", lambda v: v == "True")
    if ready is not None:
        found["ready"] = ready.t
    name = pod.subject.partition("/")[2]
    endpoint = next((m for m in marks if m.namespace == ns and m.subject.startswith("slice/")
                     and m.key == f"ready:{name}" and m.value == "True"), None)
    if endpoint is not None:
        found["endpoint"] = endpoint.t
    return found


def totals(segments: list[Segment]) -> tuple[float, float]:
    """(waiting, work) seconds on the critical path."""
    wait = sum(s.seconds for s in segments if s.kind == "wait")
    work = sum(s.seconds for s in segments if s.kind == "work")
    return wait, work
