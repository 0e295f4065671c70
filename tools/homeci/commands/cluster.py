"""``homeci cluster``: local clusters. ``sim`` = real control plane + kwok; ``local`` = a real node in a
network namespace (root, no Docker); ``kind`` needs Docker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from homeci import contract, ui
from homeci.cluster import DEFAULT_NAME, SimCluster
from homeci.cluster import stack as stackmod
from homeci.commands import params
from homeci.errors import HomeciError

if TYPE_CHECKING:
    from homeci.cluster.local import LocalCluster
    from homeci.flow.setup import Prepared

LOCAL_DOMAIN = "homeci.test"

name_option = click.option("--name", type=params.CLUSTER_NAME, default=DEFAULT_NAME, show_default=True,
                           help="Cluster name.")
values_option = click.option("--values", "-f", "values", multiple=True, type=params.ValuesFile(),
                             help="Extra values files for the umbrella (after the cluster's own).")


@click.group(name="cluster")
def group() -> None:
    """Run local clusters (simulated control plane + kwok, or kind)."""


@group.group()
def sim() -> None:
    """The simulated cluster: real etcd, kube-apiserver, controller-manager and scheduler; kwok nodes."""


@sim.command()
@name_option
@click.option("--timeout", type=click.IntRange(1, 3600), default=180, show_default=True,
              help="Seconds to wait for readiness.")
def up(name: str, timeout: int) -> None:
    """Start the cluster (builds missing binaries first); reuses a running cluster of the same name."""
    cluster = SimCluster(name)
    with ui.step(f"simulated cluster {name}") as detail:
        created = cluster.up(timeout=timeout, progress=detail)
    verb = "started" if created else "already running, reused"
    ui.out.print(f"cluster {name} {verb}: {cluster.server()}")
    ui.out.print(f"export KUBECONFIG={cluster.kubeconfig}")


@sim.command()
@name_option
def down(name: str) -> None:
    """Stop and delete the cluster: no process, port or state is left behind."""
    cluster = SimCluster(name)
    with ui.step(f"deleting simulated cluster {name}"):
        existed = cluster.down()
    ui.out.print(f"cluster {name} {'deleted' if existed else 'did not exist'}")


@sim.command()
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(name: str, as_json: bool) -> None:
    """Whether the cluster exists, its processes, API server, version and nodes."""
    st = SimCluster(name).status()
    data = {
        "name": st.name, "exists": st.exists, "processes": st.running_processes, "ready": st.ready,
        "server": st.server, "version": st.version, "nodes": st.nodes, "kubeconfig": str(st.kubeconfig),
    }
    if as_json:
        ui.out.print_json(json.dumps(data))
        return
    if not st.exists:
        ui.out.print(f"cluster {name}: not created (run `homeci cluster sim up --name {name}`)")
        return
    api = f"Kubernetes {st.version}" if st.version else "API server not answering"
    ui.out.print(f"cluster {name}: {'ready' if st.ready else 'NOT ready'}, {st.running_processes} processes, "
                 f"server {st.server}, {api}, {st.nodes} simulated nodes")
    ui.out.print(f"kubeconfig: {st.kubeconfig}")


@sim.command()
@name_option
def kubeconfig(name: str) -> None:
    """Print the cluster's kubeconfig path: export KUBECONFIG=$(homeci cluster sim kubeconfig)."""
    cluster = SimCluster(name)
    if not cluster.kubeconfig.is_file():
        raise HomeciError(f"cluster {name} has no kubeconfig: run `homeci cluster sim up --name {name}`")
    click.echo(str(cluster.kubeconfig))


@group.group()
def local() -> None:
    """A real one-node Kubernetes in a network namespace of its own (Linux, root, no Docker)."""


def _local(name: str, domain: str | None = None) -> LocalCluster:
    from homeci.cluster.local import LocalCluster

    return LocalCluster(name, domain=domain)


@local.command(name="up")
@name_option
@click.option("--domain", type=params.DnsName(), default=LOCAL_DOMAIN, show_default=True,
              help="Public DNS suffix the cluster resolves to Traefik (git., ci., registry.).")
@click.option("--timeout", type=click.IntRange(1, 3600), default=240, show_default=True,
              help="Seconds to wait for readiness.")
@click.option("--build/--no-build", default=False, show_default=True,
              help="Build missing toolchain binaries and the pause/CoreDNS images first (Go builds: slow).")
def local_up(name: str, domain: str, timeout: int, build: bool) -> None:
    """Start the node (reuses a healthy cluster of the same name)."""
    cluster = _local(name, domain)
    with ui.step(f"local cluster {name}") as detail:
        created = cluster.up(timeout=timeout, progress=detail, build=build)
    took = cluster.info().get("started_seconds")
    verb = f"started in {took}s" if created and took else "already running, reused"
    ui.out.print(f"cluster {name} {verb}: API {cluster.server()} (node {cluster.layout.node_name})")
    ui.out.print(f"export KUBECONFIG={cluster.kubeconfig}")
    ui.out.print(f"stack URLs once installed: {cluster.https_url('git')} (and ci., registry.) "
                 "on 127.0.0.1")


@local.command(name="down")
@name_option
def local_down(name: str) -> None:
    """Stop everything and delete the state: no process, mount, namespace, cgroup or file is left."""
    cluster = _local(name)
    with ui.step(f"deleting local cluster {name}"):
        existed = cluster.down()
    left = cluster.leftovers()
    if left:
        raise HomeciError(f"left behind after down: {'; '.join(left)}")
    ui.out.print(f"cluster {name} {'deleted' if existed else 'did not exist'}")


@local.command(name="status")
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def local_status(name: str, as_json: bool) -> None:
    """Whether the cluster exists, its processes, API server, version and node."""
    st = _local(name).status()
    data = {
        "name": st.name, "exists": st.exists, "processes": st.processes, "ready": st.ready,
        "server": st.server, "version": st.version, "nodes": st.nodes, "kubeconfig": str(st.kubeconfig),
        "https": st.https,
    }
    if as_json:
        ui.out.print_json(json.dumps(data))
        return
    if not st.exists:
        ui.out.print(f"cluster {name}: not created (run `homeci cluster local up --name {name}`)")
        return
    api = f"Kubernetes {st.version}" if st.version else "API server not answering"
    down = [n for n, ok in st.processes.items() if not ok]
    procs = f"{st.running_processes} processes" + (f" (not running: {', '.join(down)})" if down else "")
    ui.out.print(f"cluster {name}: {'ready' if st.ready else 'NOT ready'}, {procs}, server {st.server}, "
                 f"{api}, {st.nodes} real node(s)")
    ui.out.print(f"kubeconfig: {st.kubeconfig}")
    if st.https:
        ui.out.print(f"stack: {st.https}")


@local.command(name="kubeconfig")
@name_option
def local_kubeconfig(name: str) -> None:
    """Print the kubeconfig path: export KUBECONFIG=$(homeci cluster local kubeconfig)."""
    cluster = _local(name)
    if not cluster.kubeconfig.is_file():
        raise HomeciError(f"cluster {name} has no kubeconfig: run `homeci cluster local up --name {name}`")
    click.echo(str(cluster.kubeconfig))


@local.command(name="install")
@name_option
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True)
@values_option
def local_install(name: str, major: str, values: tuple[Path, ...]) -> None:
    """Load the stack's images and install the umbrella on the running local cluster."""
    cluster = _local(name)
    if not cluster.healthy():
        raise HomeciError(f"local cluster {name} is not running: run `homeci cluster local up --name {name}`")
    with ui.step(f"installing homeci on local cluster {name}") as detail:
        done = cluster.install_stack(major=int(major), values_files=[Path(v) for v in values],
                                     progress=detail)
    out = ui.out
    out.print(f"[bold]homeci installed[/bold]: release {done.release} revision {done.revision} in "
              f"namespace {done.namespace} (Pod Security: restricted), Helm {major}, "
              f"real pods on {cluster.layout.node_name}")
    for w in done.workloads:
        out.print(f"  {w}")
    port = cluster.info()["ports"]["https"]
    names = contract.hosts({"global": {"domain": cluster.domain}})
    for host in names.values():
        out.print(f"  https://{host}:{port}")
    out.print(f"the names resolve only inside the cluster: on this machine add "
              f"`127.0.0.1 {' '.join(names.values())}` to /etc/hosts "
              f"or use curl --resolve {names['git']}:{port}:127.0.0.1")
    out.print(f"trust the CA: kubectl --kubeconfig {cluster.kubeconfig} -n {done.namespace} get configmap "
              f"{done.release}-ca -o jsonpath='{{.data.ca\\.crt}}' > homeci-ca.crt")


def _images_group() -> click.Group:
    from homeci.commands.images import group as images_group

    return images_group


class _LocalImages(click.Group):
    """``homeci cluster local images``: homeci.commands.images (list, build) plus ``load``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_images_group().list_commands(ctx), *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _images_group().get_command(ctx, cmd_name)


@local.group(name="images", cls=_LocalImages)
def local_images() -> None:
    """Images built from source (list, build) and loaded into the node (load)."""


@local_images.command(name="load")
@name_option
@click.argument("names", nargs=-1)
@click.option("--build/--no-build", default=True, show_default=True,
              help="Build images that are not in the cache yet.")
def local_images_load(name: str, names: tuple[str, ...], build: bool) -> None:
    """Import NAMES (default: every image a default render references) into the node's containerd."""
    from homeci import images

    cluster = _local(name)
    if not cluster.healthy():
        raise HomeciError(f"local cluster {name} is not running: run `homeci cluster local up --name {name}` "
                          "before loading images into it")
    refs = list(names) or [r.ref for r in images.referenced_images() if r.default]
    for ref in refs:
        images.require(ref)
    if not build:
        missing = [r for r in refs if not images.is_cached(r)]
        if missing:
            raise HomeciError(f"image {missing[0]} is not built: run "
                              f"`homeci cluster local images build {missing[0]}`")
    with ui.step(f"building {len(refs)} image(s)") as detail:
        archives = images.build(refs, detail)
    with ui.step(f"ctr -n k8s.io images import ({len(archives)} archives)") as detail:
        cluster.load_images(sorted(set(archives.values())), progress=detail)
    ui.out.print(f"{len(archives)} image(s) loaded into local cluster {name}")


@group.group()
def kind() -> None:
    """kind clusters: need a Docker engine (`homeci cluster up --provider kind` installs the stack too)."""


@kind.command(name="up")
@name_option
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True)
@values_option
@click.pass_context
def kind_up(ctx: click.Context, name: str, major: str, values: tuple[Path, ...]) -> None:
    """A kind cluster with the stack installed: the same as `homeci cluster up --provider kind`."""
    ctx.invoke(stack_up, name=name, provider="kind", major=major, values=values)


PROVIDERS = ("auto", "kind", "local", "sim")


def _choose(provider: str) -> tuple[str, str]:
    """(provider, why) for ``homeci cluster up``: kind with Docker, else the local real node, else sim."""
    from homeci.flow.setup import provider_available

    if provider != "auto":
        return provider, "asked for with --provider"
    chosen, why = provider_available()
    if chosen is None:
        return "sim", f"{why}; the simulated cluster runs no container"
    return chosen, why


@group.command(name="up")
@name_option
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True,
              help="auto = kind where a Docker engine answers, else the local real node (Linux, root), "
                   "else the simulated cluster (API objects only, no containers).")
@click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True)
@values_option
def stack_up(name: str, provider: str, major: str, values: tuple[Path, ...]) -> None:
    """A working homeci stack on this machine: a cluster, the umbrella and drone-pipelines installed."""
    chosen, why = _choose(provider)
    ui.console.print(f"provider: {chosen} ({why})")
    extra = [Path(v) for v in values]
    if chosen == "sim":
        _sim_up(name, int(major), extra)
        return
    from homeci.flow import setup

    workdir = _up_state(chosen, name)
    with ui.step(f"homeci on a {chosen} cluster '{name}' (cluster, umbrella, drone-pipelines)") as detail:
        prepared = setup.prepare(name, provider=chosen, major=int(major), progress=detail, workdir=workdir,
                                 values_files=extra)
    _print_stack(prepared, name)


def _up_state(provider: str, name: str) -> Path:
    from homeci.paths import cache_dir

    path = cache_dir() / "up" / provider / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _print_stack(prepared: Prepared, name: str) -> None:
    st = prepared.stack
    out = ui.out
    out.print(f"[bold]homeci is running[/bold] on the {prepared.provider} cluster '{name}': release "
              f"{st.release} in namespace {st.namespace}, pipelines for owner {prepared.app.owner} deploying "
              f"to namespace {prepared.app.namespace}")
    out.print(f"kubeconfig: export KUBECONFIG={prepared.kubeconfig}")
    for label, what in (("git", "Gogs"), ("ci", "Drone"), ("registry", "registry")):
        out.print(f"  {what:9} {st.url(label)}")
    out.print(f"admin: {st.admin_user} (password: kubectl -n {st.namespace} get secret {st.release}-admin "
              "-o jsonpath='{.data.password}' | base64 -d)")
    out.print(f"CA certificate: {st.ca_file} (trust it: see the README, 'Trusting the CA')")
    if st.https_port != 443 or prepared.provider == "local":
        hosts = " ".join(st.hosts.values())
        out.print(f"the names resolve only inside the cluster: add `127.0.0.1 {hosts}` to /etc/hosts "
                  f"(the stack answers on 127.0.0.1:{st.https_port})")
    args = f"--kubeconfig {prepared.kubeconfig}" + (
        f" --connect 127.0.0.1:{st.https_port}" if st.https_port != 443 else "")
    out.print(f"prove the loop: homeci smoke {args}  (from the checkout: nox -s smoke -- {args})")
    down = {"local": f"homeci cluster local down --name {name}", "kind": f"kind delete cluster --name {name}"}
    out.print(f"stop it with: {down.get(prepared.provider, f'homeci cluster down --name {name}')}")


def _sim_up(name: str, major: int, values: list[Path]) -> None:
    cluster = SimCluster(name)
    with ui.step(f"simulated cluster {name}") as detail:
        cluster.up(progress=detail)
    with ui.step(f"helm{major} upgrade --install --wait {stackmod.RELEASE} (charts/homeci-umbrella)"):
        done = stackmod.install(cluster, major=major, values_files=values)
    out = ui.out
    out.print(f"[bold]homeci installed[/bold]: release {done.release} revision {done.revision} "
              f"in namespace {done.namespace} (Pod Security: restricted), Helm {major}")
    out.print(f"chart: {done.chart}")
    out.print(f"cluster: simulated '{name}' at {done.server}")
    out.print(f"kubeconfig: export KUBECONFIG={done.kubeconfig}")
    for w in done.workloads:
        out.print(f"  {w}")
    for s in done.services:
        out.print(f"  Service {s}")
    if done.hosts:
        out.print("public hosts (Ingress): " + ", ".join(done.hosts))
    out.print(f"[yellow]{done.pods} pods are SIMULATED by kwok: no container runs, no image is pulled, "
              "no URL answers.[/yellow] The API objects, admission, scheduling, hooks and Helm lifecycle "
              "are real.")
    out.print(f"stop it with: homeci cluster down --name {name}  (or nox -s down)")


@group.command(name="down")
@name_option
def stack_down(name: str) -> None:
    """Delete the stack's cluster named NAME, whichever provider made it (everything in it goes too)."""
    from homeci.cluster.kind import KindCluster

    gone = []
    if SimCluster(name).down():
        gone.append("simulated")
    local_cluster = _local(name)
    if local_cluster.exists():
        with ui.step(f"deleting local cluster {name}"):
            local_cluster.down()
        left = local_cluster.leftovers()
        if left:
            raise HomeciError(f"left behind after down: {'; '.join(left)}")
        gone.append("local")
    kind_cluster = KindCluster(name)
    if kind_cluster.state.exists():
        kind_cluster.down()
        shutil.rmtree(kind_cluster.state, ignore_errors=True)
        gone.append("kind")
    ui.out.print(f"cluster {name}: " + (f"deleted ({', '.join(gone)})" if gone else "did not exist"))
