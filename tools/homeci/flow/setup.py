"""Bring a real cluster to the state the push-to-deploy flow starts from, for either provider.

``local`` (the real node of :mod:`homeci.cluster.local`, images built from source) or ``kind`` (Docker,
upstream images). Both end the same way: the umbrella installed, drone-pipelines installed with one
target namespace, and a :class:`~homeci.flow.stack.Stack` that reaches the public names from this host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeci import contract
from homeci.errors import HomeciError
from homeci.flow import driver, stack
from homeci.paths import charts_dir, repo_root, sample_app

PIPELINES_RELEASE = contract.PIPELINES_RELEASE
TARGET = "apps"

Progress = Callable[[str], None]


@dataclass
class Prepared:
    provider: str  # "local" | "kind"
    cluster: Any
    stack: stack.Stack
    app: driver.App
    kubeconfig: Path


def provider_available() -> tuple[str | None, str]:
    """(provider, why): kind where a Docker engine answers, else the local real node where it can run."""
    from homeci.cluster import kind
    from homeci.cluster.local import unsupported_reason

    if kind.docker_available():
        return "kind", "a Docker engine answers"
    reason = unsupported_reason()
    if reason is None:
        return "local", "no Docker engine; this Linux host runs the local real node"
    return None, f"no Docker engine, and the local real node cannot run here: {reason}"


def _ensure_target(api: Any, name: str) -> None:
    from homeci.cluster.stack import PSS_LABELS, ensure_namespace

    ensure_namespace(api, name, PSS_LABELS)


def _install_pipelines(kubeconfig: Path, st: stack.Stack, release: str, namespace: str, major: int) -> None:
    """drone-pipelines for the stack's admin, told the stack's own hosts (its admission policy keeps app
    Ingresses off them)."""
    from homeci.helm import Helm

    labels = [f"stack.hosts.{c}={h.removesuffix('.' + st.domain)}" for c, h in sorted(st.hosts.items())]
    Helm(major, kubeconfig=kubeconfig).upgrade(
        PIPELINES_RELEASE, charts_dir() / "drone-pipelines", namespace=namespace, timeout="5m",
        set_values=[f"stack.release={release}", f"stack.domain={st.domain}", *labels,
                    f"targets[0].namespace={TARGET}", f"targets[0].owners[0]={st.admin_user}"],
    )


def local(name: str, *, major: int = 3, progress: Progress | None = None, workdir: Path,
          values_files: list[Path] | None = None) -> Prepared:
    """The local real node: up (images built from source), umbrella, pipelines, base images seeded."""
    from kubernetes import client

    from homeci import images
    from homeci.cluster import stack as stackmod
    from homeci.cluster.local import LocalCluster
    from homeci.flow.web import PublicNames

    cluster = LocalCluster(name)
    cluster.up(timeout=300, build=True, progress=progress)
    cluster.install_stack(major=major, timeout="10m", progress=progress, values_files=values_files)
    api = cluster.api()
    port = int(cluster.info()["ports"]["https"])
    st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), stackmod.NAMESPACE,
                            stackmod.RELEASE, workdir, lambda ca: PublicNames({"https": port}, ca))
    st.https_port = port
    st.git_resolve = [f"{h}:{port}:127.0.0.1" for h in st.hosts.values()]
    _ensure_target(api, TARGET)
    if progress:
        progress(f"helm{major} upgrade --install {PIPELINES_RELEASE} (target namespace {TARGET})")
    _install_pipelines(cluster.kubeconfig, st, stackmod.RELEASE, stackmod.NAMESPACE, major)
    source = sample_app()
    if progress:
        progress("seeding the sample app's base images into the registry (kaniko's mirror)")

    def archive_for(ref: str) -> Path:
        return images.build([ref], progress)[ref]

    driver.seed_base_images(st, source / "Dockerfile", archive_for)
    app = driver.App(source=source, owner=st.admin_user, name="sample-app", namespace=TARGET,
                     host=f"sample-app.{st.domain}")
    return Prepared("local", cluster, st, app, cluster.kubeconfig)


def attach_local(name: str, *, workdir: Path) -> Prepared:
    """A local real node that ``homeci cluster up --provider local --name NAME`` left running, with the
    stack and drone-pipelines installed: what the T3 tiers need, without creating anything."""
    from kubernetes import client

    from homeci.cluster import stack as stackmod
    from homeci.cluster.local import LocalCluster
    from homeci.flow.web import PublicNames

    cluster = LocalCluster(name)
    info = cluster.info()
    if not info.get("ports"):
        raise HomeciError(f"no running local cluster {name!r}: start it with "
                          f"homeci cluster up --provider local --name {name}")
    api = cluster.api()
    port = int(info["ports"]["https"])
    st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), stackmod.NAMESPACE,
                            stackmod.RELEASE, workdir, lambda ca: PublicNames({"https": port}, ca))
    st.https_port = port
    st.git_resolve = [f"{h}:{port}:127.0.0.1" for h in st.hosts.values()]
    app = driver.App(source=sample_app(), owner=st.admin_user, name="sample-app", namespace=TARGET,
                     host=f"sample-app.{st.domain}")
    return Prepared("local", cluster, st, app, cluster.kubeconfig)


def kind_cluster(name: str, *, major: int = 3, progress: Progress | None = None, workdir: Path,
                 values_files: list[Path] | None = None) -> Prepared:
    """kind (Docker): host ports 443/80 on 127.0.0.1, CoreDNS rewrite, the node resolving the names."""
    from kubernetes import client, config

    from homeci.cluster import kind
    from homeci.cluster import stack as stackmod
    from homeci.flow.web import PublicNames
    from homeci.helm import Helm

    cluster = kind.KindCluster(name)
    if progress:
        progress(f"kind create cluster --name {name}")
    cluster.up()
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    helm = Helm(major, kubeconfig=cluster.kubeconfig)
    from homeci.cluster.stack import ensure_namespace

    # kind's Traefik binds host ports: Pod Security `privileged` for this namespace (the kind scenario's
    # documented exception).
    ensure_namespace(api, stackmod.NAMESPACE, {"pod-security.kubernetes.io/enforce": "privileged"})
    helm.upgrade(stackmod.RELEASE, charts_dir() / "homeci-umbrella", namespace=stackmod.NAMESPACE,
                 values_files=[repo_root() / kind.KIND_VALUES, *(values_files or [])], timeout="10m")
    # The host reaches the names on 127.0.0.1:443 (kind's port mapping) whatever its resolver says.
    st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), stackmod.NAMESPACE,
                            stackmod.RELEASE, workdir, lambda ca: PublicNames({"https": 443}, ca))
    st.git_resolve = [f"{h}:443:127.0.0.1" for h in st.hosts.values()]
    cluster.configure_dns(api, domain=st.domain, release=stackmod.RELEASE, namespace=stackmod.NAMESPACE)
    _ensure_target(api, TARGET)
    _install_pipelines(cluster.kubeconfig, st, stackmod.RELEASE, stackmod.NAMESPACE, major)
    app = driver.App(source=sample_app(), owner=st.admin_user, name="sample-app",
                     namespace=TARGET, host=f"sample-app.{st.domain}")
    return Prepared("kind", cluster, st, app, cluster.kubeconfig)


def prepare(name: str, *, provider: str | None = None, major: int = 3, progress: Progress | None = None,
            workdir: Path, values_files: list[Path] | None = None) -> Prepared:
    chosen, why = provider_available() if provider is None else (provider, "asked for")
    if chosen is None:
        raise HomeciError(f"no real cluster can run here ({why})")
    if chosen == "kind":
        return kind_cluster(name, major=major, progress=progress, workdir=workdir, values_files=values_files)
    return local(name, major=major, progress=progress, workdir=workdir, values_files=values_files)
