"""The stack on any provider: one function, :func:`install_stack`, for ``homeci cluster up`` and
``install``, ``nox -s up`` and the tests (through :mod:`homeci.flow.setup`).

It loads the images the provider needs (built from source for the real node and offline kind; nothing
where the nodes pull upstream images; nothing on the simulated cluster), installs the umbrella into a Pod
Security ``restricted`` namespace with the provider's values first, lets the provider point the node side
of the public names at Traefik, installs drone-pipelines with one target namespace, and — where the nodes
cannot reach Docker Hub — seeds the sample app's base images into the stack's registry. The result says
what runs and how this machine reaches it.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import contract, kubeaccess, toolchain
from homeci.cluster.provider import Cluster, Progress
from homeci.helm import Helm
from homeci.paths import charts_dir, sample_app

# The namespace drone-pipelines deploys the sample app to (targets[0].namespace).
TARGET = "apps"


@dataclass
class Installed:
    release: str
    namespace: str
    chart: Path
    revision: int
    kubeconfig: Path
    server: str | None
    workloads: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    pods: int = 0
    stack: Any = None  # homeci.flow.stack.Stack, read back from the cluster
    seeded: list[str] = field(default_factory=list)


def default_images() -> list[str]:
    """Every image a default render of the charts references (what the nodes must have), the images of
    the stack's own pods first (:func:`split_images`)."""
    from homeci import images

    found = [r for r in images.referenced_images(defaults_only=True) if r.default]
    return [r.ref for r in found if r.pod] + [r.ref for r in found if not r.pod]


def split_images(refs: list[str]) -> tuple[list[str], list[str]]:
    """``refs`` as (what the stack's pods run, what only a build's steps start: the runner's clone and
    placeholder images, the pipeline templates' step images). The first must be on the nodes before the
    umbrella is installed; the second only before the first push."""
    from homeci import images

    pods = {r.ref for r in images.referenced_images(defaults_only=True) if r.pod}
    first = [r for r in refs if images.normalize(r) in pods]
    return first, [r for r in refs if r not in first]


def install_stack(cluster: Cluster, *, major: int = 3, values_files: list[Path] | None = None,
                  timeout: str = "10m", progress: Progress | None = None, pipelines: bool = True,
                  workdir: Path | None = None, umbrella: Path | None = None,
                  pipelines_chart: Path | None = None) -> Installed:
    """The umbrella and drone-pipelines on ``cluster``, ready for the push-to-deploy flow (the checkout's
    charts unless ``umbrella``/``pipelines_chart`` name others: folders or packaged archives)."""
    say = progress or (lambda _m: None)
    release, namespace = contract.RELEASE, contract.NAMESPACE
    chart = umbrella or charts_dir() / contract.UMBRELLA
    pipelines_chart = pipelines_chart or charts_dir() / contract.PIPELINES
    toolchain.resolve(f"helm{major}", build=True, progress=progress)  # built on first use, like the rest
    steps: list[str] = []
    if cluster.image_source == "source":
        refs = default_images() if umbrella is None else chart_images(chart, pipelines_chart)
        pods, steps = split_images(refs) if umbrella is None else (refs, [])
        say(f"images built from source for the nodes ({len(refs)}: the {len(pods)} of the stack's pods "
            f"now, the {len(steps)} of pipeline steps once those pods are Ready)")
        cluster.load_images(pods, progress)
    api = cluster.api()
    kubeaccess.ensure_namespace(api, namespace, kubeaccess.pss_labels("restricted"))
    helm = Helm(major, kubeconfig=cluster.kubeconfig)
    # A first install overlaps what follows with the umbrella's post-install hook (Drone's bootstrap, a
    # Job; the certificates' publication and the registry's rehash are Jobs of the install itself, run
    # beside the pods' start): once its pods are Ready, drone-pipelines (its registration hook needs only
    # Drone) and the seeding (only the registry) go ahead. An upgrade of an existing release waits for it
    # first, as before.
    overlap = pipelines and not _release_exists(api, release, namespace)
    with tempfile.TemporaryDirectory(prefix="homeci-values-") as tmp, \
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="homeci-install") as pool:
        steps_loaded = None
        own = Path(tmp) / f"{cluster.provider}-values.yaml"
        own.write_text(yaml.safe_dump(cluster.values(), sort_keys=False))
        say(f"helm{major} upgrade --install --wait {release} ({contract.UMBRELLA})")
        umbrella_job = pool.submit(helm.upgrade, release, chart, namespace=namespace,
                                   values_files=[own, *(values_files or [])], timeout=timeout)
        if overlap:
            kubeaccess.wait_for(f"the pods of {release}", lambda: _pods_ready(api, release, namespace,
                                                                              umbrella_job),
                                timeout=24 * 3600)  # Helm's --timeout ends the wait first
            if umbrella_job.done():
                umbrella_job.result()  # its error, if it failed before its pods were Ready
            say(f"the pods of {release} are Ready; its post-install hook runs beside drone-pipelines")
        else:
            umbrella_job.result()
        if steps:
            # the steps' images are imported now, not while the stack's pods start (they share 2 cores)
            steps_loaded = pool.submit(_load_step_images, cluster, steps, progress)
        try:
            cluster.publish(release=release, namespace=namespace, progress=progress)
            st = read_stack(cluster, workdir)
            seeded = _install_pipelines_and_seed(cluster, helm, st, major, pipelines_chart, say) \
                if pipelines else []
        except BaseException:
            if not umbrella_job.done():
                say(f"waiting for helm upgrade {release} to finish before failing")
            umbrella_job.result()  # waits; the umbrella's own failure is the one to report first
            raise
        umbrella_job.result()
        if steps_loaded is not None:
            steps_loaded.result()
    done = summary(cluster, helm, release, namespace, chart)
    done.stack, done.seeded = st, seeded
    return done


def _install_pipelines_and_seed(cluster: Cluster, helm: Helm, st: Any, major: int, chart: Path,
                                say: Progress) -> list[str]:
    """drone-pipelines for the stack's admin, with the sample app's base images seeded beside it where
    the nodes build from source (the seeding pushes to the registry; the install's hook waits on Drone)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="homeci-seed") as pool:
        seeding = None
        if cluster.image_source == "source":
            say("seeding the sample app's base images into the registry (kaniko's mirror)")
            seeding = pool.submit(seed_base_images, st)
        say(f"helm{major} upgrade --install {contract.PIPELINES_RELEASE} (target namespace {TARGET})")
        install_pipelines(cluster, helm, owner=st.admin_user, domain=st.domain, hosts=st.hosts, chart=chart)
        return seeding.result() if seeding is not None else []


def _release_exists(api: Any, release: str, namespace: str) -> bool:
    """Whether Helm keeps a record of ``release`` (any revision, any status) in ``namespace``."""
    from kubernetes import client

    found = client.CoreV1Api(api).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={release}", limit=1)
    return bool(found.items)


def _pods_ready(api: Any, release: str, namespace: str, install: Future[Any]) -> str | None:
    """None once every Deployment of ``release`` (Drone's and the registry's among them) has its replicas
    Ready, or once ``install`` ended; else what is still starting."""
    from kubernetes import client

    if install.done():
        return None
    names = contract.Names(release)
    found = client.AppsV1Api(api).list_namespaced_deployment(
        namespace, label_selector=f"app.kubernetes.io/instance={release}").items
    have = {d.metadata.name for d in found}
    absent = [n for n in (names.drone, names.registry) if n not in have]
    if absent:
        return f"{', '.join(absent)} not created yet"
    starting = [d.metadata.name for d in found if (d.status.ready_replicas or 0) < (d.spec.replicas or 1)]
    return f"{', '.join(sorted(starting))} starting" if starting else None


def _load_step_images(cluster: Cluster, refs: list[str], progress: Progress | None) -> None:
    """The images only a build's steps start, on the nodes before ``up`` says the stack is ready: loaded
    once the stack's pods are Ready, beside drone-pipelines and the umbrella's post-install hook."""
    if refs:
        if progress:
            progress(f"the pipeline steps' images ({len(refs)})")
        cluster.load_images(refs, progress)


def chart_images(*charts: Path) -> list[str]:
    """Every image the nodes need to run ``charts`` (folders or packaged archives, e.g. a previous
    release) with their defaults: what a default render of each names (pods, the runner's step images,
    the pipeline templates' defaults), and the cluster's own."""
    from homeci import images, rendering
    from homeci.release import rendered_images

    found = {images.normalize(ref) for ref in images.refs.CLUSTER_IMAGES}
    for chart in charts:
        found |= {images.normalize(ref) for ref in rendered_images(rendering.render(chart))}
    return sorted(found)


def install_pipelines(cluster: Cluster, helm: Helm, *, owner: str, domain: str,
                      hosts: dict[str, str], chart: Path | None = None) -> None:
    """drone-pipelines for the stack's admin, told the stack's own host labels (its admission policy keeps
    app Ingresses off them; a chart from before ``stack.hosts`` existed is not told)."""
    chart = chart or charts_dir() / contract.PIPELINES
    kubeaccess.ensure_namespace(cluster.api(), TARGET, kubeaccess.pss_labels("restricted"))
    labels = [f"stack.hosts.{c}={h.removesuffix('.' + domain)}" for c, h in sorted(hosts.items())]
    if "hosts" not in (helm.show_values(chart).get("stack") or {}):
        labels = []
    helm.upgrade(
        contract.PIPELINES_RELEASE, chart, namespace=contract.NAMESPACE,
        timeout="5m",
        set_values=[f"stack.release={contract.RELEASE}", f"stack.domain={domain}", *labels,
                    f"targets[0].namespace={TARGET}", f"targets[0].owners[0]={owner}"],
    )


def read_stack(cluster: Cluster, workdir: Path | None = None) -> Any:
    """The installed stack as the flow sees it (hosts, CA, credentials), reached through the cluster's
    loopback port for the public names."""
    from kubernetes import client

    from homeci.flow import stack
    from homeci.flow.web import PublicNames

    api = cluster.api()
    port = cluster.https_port() or 443
    folder = workdir or Path(tempfile.mkdtemp(prefix="homeci-stack-"))
    st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), contract.NAMESPACE,
                            contract.RELEASE, folder, lambda ca: PublicNames({"https": port}, ca))
    st.https_port = port
    st.git_resolve = [f"{h}:{port}:127.0.0.1" for h in st.hosts.values()]
    return st


def seed_base_images(st: Any, progress: Progress | None = None) -> list[str]:
    """The sample app's base images, built from source, pushed where kaniko's mirror lookup finds them."""
    from homeci import images
    from homeci.flow import driver

    def archive_for(ref: str) -> Path:
        return images.build([ref], progress)[ref]

    return driver.seed_base_images(st, sample_app() / "Dockerfile", archive_for)


def traefik_ip(api: Any, release: str, namespace: str) -> str | None:
    """The ClusterIP of the umbrella's Traefik Service (None before the install)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        svc = client.CoreV1Api(api).read_namespaced_service(contract.Names(release).traefik, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    ip = svc.spec.cluster_ip
    return str(ip) if ip and ip != "None" else None


def summary(cluster: Cluster, helm: Helm, release: str, namespace: str, chart: Path) -> Installed:
    """What the release runs: workloads with their readiness, Services, public hosts, pods."""
    from kubernetes import client

    api = cluster.api()
    status = helm.status(release, namespace=namespace)
    apps = client.AppsV1Api(api)
    workloads = [f"Deployment/{d.metadata.name} {d.status.ready_replicas or 0}/{d.spec.replicas}"
                 for d in apps.list_namespaced_deployment(namespace).items]
    workloads += [f"StatefulSet/{s.metadata.name} {s.status.ready_replicas or 0}/{s.spec.replicas}"
                  for s in apps.list_namespaced_stateful_set(namespace).items]
    # DaemonSets live in their own namespaces (node trust needs Pod Security "privileged").
    selector = f"app.kubernetes.io/instance={release}"
    daemonsets = apps.list_daemon_set_for_all_namespaces(label_selector=selector).items
    workloads += [f"DaemonSet/{d.metadata.name} (namespace {d.metadata.namespace}) "
                  f"{d.status.number_ready or 0}/{d.status.desired_number_scheduled or 0}"
                  for d in daemonsets]
    core = client.CoreV1Api(api)
    services = []
    for svc in core.list_namespaced_service(namespace).items:
        ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
        address = f" → {ingress[0].ip}" if ingress else ""
        ports = ",".join(str(p.port) for p in svc.spec.ports or [])
        services.append(f"{svc.metadata.name} ({svc.spec.type} {ports}{address})")
    hosts = sorted({rule.host for ing in client.NetworkingV1Api(api).list_namespaced_ingress(namespace).items
                    for rule in (ing.spec.rules or []) if rule.host})
    pods = len(core.list_namespaced_pod(namespace).items)
    pods += sum(d.status.number_ready or 0 for d in daemonsets)
    return Installed(release, namespace, chart, int(status.get("version", 0)), cluster.kubeconfig,
                     cluster.server(), sorted(workloads), sorted(services), hosts, pods)
