"""A working homeci stack on the simulated cluster: ``nox -s up`` / ``homeci cluster up``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from homeci.helm import Helm
from homeci.paths import charts_dir

RELEASE = "homeci"
NAMESPACE = "homeci"
PSS_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}


def ensure_namespace(api: Any, name: str, labels: dict[str, str]) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    body = {"metadata": {"name": name, "labels": labels}}
    try:
        core.create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.patch_namespace(name, {"metadata": {"labels": labels}})


class Cluster(Protocol):
    """What installing needs from a cluster provider (SimCluster, LocalCluster)."""

    @property
    def kubeconfig(self) -> Path: ...

    def api(self) -> Any: ...

    def server(self) -> str | None: ...


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


def install(cluster: Cluster, *, major: int = 3, values_files: list[Path] | None = None,
            timeout: str = "5m") -> Installed:
    """``helm upgrade --install --wait`` the umbrella into a Pod Security restricted namespace."""
    from kubernetes import client

    api = cluster.api()
    ensure_namespace(api, NAMESPACE, PSS_LABELS)
    chart = charts_dir() / "homeci-umbrella"
    helm = Helm(major, kubeconfig=cluster.kubeconfig)
    helm.upgrade(RELEASE, chart, namespace=NAMESPACE, values_files=values_files or [], timeout=timeout)
    status = helm.status(RELEASE, namespace=NAMESPACE)
    apps = client.AppsV1Api(api)
    workloads = [f"Deployment/{d.metadata.name} {d.status.ready_replicas or 0}/{d.spec.replicas}"
                 for d in apps.list_namespaced_deployment(NAMESPACE).items]
    workloads += [f"StatefulSet/{s.metadata.name} {s.status.ready_replicas or 0}/{s.spec.replicas}"
                  for s in apps.list_namespaced_stateful_set(NAMESPACE).items]
    # DaemonSets live in their own namespaces (node trust needs Pod Security "privileged").
    selector = f"app.kubernetes.io/instance={RELEASE}"
    daemonsets = apps.list_daemon_set_for_all_namespaces(label_selector=selector).items
    workloads += [f"DaemonSet/{d.metadata.name} (namespace {d.metadata.namespace}) "
                  f"{d.status.number_ready or 0}/{d.status.desired_number_scheduled or 0}"
                  for d in daemonsets]
    core = client.CoreV1Api(api)
    services = []
    for svc in core.list_namespaced_service(NAMESPACE).items:
        ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
        address = f" → {ingress[0].ip}" if ingress else ""
        ports = ",".join(str(p.port) for p in svc.spec.ports or [])
        services.append(f"{svc.metadata.name} ({svc.spec.type} {ports}{address})")
    hosts = sorted({rule.host for ing in client.NetworkingV1Api(api).list_namespaced_ingress(NAMESPACE).items
                    for rule in (ing.spec.rules or []) if rule.host})
    pods = len(core.list_namespaced_pod(NAMESPACE).items)
    pods += sum(d.status.number_ready or 0 for d in daemonsets)
    return Installed(RELEASE, NAMESPACE, chart, int(status.get("version", 0)), cluster.kubeconfig,
                     cluster.server(), sorted(workloads), sorted(services), hosts, pods)
