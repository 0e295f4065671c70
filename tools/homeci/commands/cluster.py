"""``homeci cluster``: clusters on this machine, one command tree for every provider.

``up``, ``down``, ``stop``, ``start``, ``status``, ``kubeconfig``, ``images`` and ``install`` take the same
``--provider``
(``auto``, ``sim``, ``netns`` — also ``local``, its first name — or ``kind``) and ``--name``, and
``status --json`` prints the same fields whatever the provider (:class:`homeci.cluster.Status`). The
first command names (``homeci cluster sim|local|kind <command>``) still work and mean
``--provider sim|netns|kind``; ``up`` under them makes a bare cluster, as it always did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from homeci import contract, ui
from homeci.cluster import CHOICES, DEFAULT_NAME, PROVIDERS, canonical, choose, make
from homeci.commands import params
from homeci.errors import HomeciError

if TYPE_CHECKING:
    from homeci.cluster import Cluster
    from homeci.flow.setup import Prepared

name_option = click.option("--name", type=params.CLUSTER_NAME, default=DEFAULT_NAME, show_default=True,
                           help="Cluster name.")
values_option = click.option("--values", "-f", "values", multiple=True, type=params.ValuesFile(),
                             help="Extra values files for the umbrella (after the cluster's own).")
helm_option = click.option("--helm", "major", type=click.Choice(["3", "4"]), default="3", show_default=True,
                           help="Helm major version that installs the stack.")


def provider_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--provider", type=click.Choice(CHOICES), default="auto", show_default=True,
                        help=help_text)


AUTO_UP = ("auto = kind where a Docker engine answers, else the real node in a network namespace (netns; "
           "Linux, root), else the simulated cluster (API objects only, no containers). local = netns.")
AUTO_FIND = "auto = the provider that has a cluster of this name. local = netns."


class _ClusterGroup(click.Group):
    """The command tree, plus the first names ``sim``, ``local`` and ``kind`` as hidden aliases."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in ("sim", "local", "kind"):
            return _alias(self, canonical(cmd_name), cmd_name)
        return found


@click.group(name="cluster", cls=_ClusterGroup)
def group() -> None:
    """Clusters on this machine: simulated (sim), a real node in a network namespace (netns), or kind."""


def _alias(base: click.Group, provider: str, first_name: str) -> click.Group:
    """``homeci cluster <first_name> <command>``: the command with ``--provider`` set (``up``: bare)."""

    class Alias(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return base.list_commands(ctx)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            main = base.get_command(ctx, cmd_name)
            if isinstance(main, click.Group):
                return _alias(main, provider, first_name)
            if main is None:
                return None
            names = {p.name for p in main.params}
            fixed = {k: v for k, v in (("provider", provider), ("stack", False)) if k in names}
            kept = [p for p in main.params if p.name not in fixed]
            target = main

            @click.pass_context
            def run(inner: click.Context, /, **kwargs: Any) -> Any:
                return inner.invoke(target, **kwargs, **fixed)

            return click.Command(cmd_name, params=kept, callback=run, help=main.help,
                                 short_help=main.short_help)

    return Alias(name=first_name, help=f"The first name of `homeci cluster <command> --provider {provider}`.")


def _find(provider: str, name: str) -> Cluster:
    """The cluster ``name`` of ``provider``; with ``auto`` the provider that has one of that name."""
    if provider != "auto":
        return make(canonical(provider), name)
    for candidate in PROVIDERS:
        cluster = make(candidate, name)
        if cluster.exists():
            return cluster
    raise HomeciError(f"no cluster named {name!r} exists (sim, netns or kind): run `homeci cluster up "
                      f"--name {name}` (or pass --provider)")


def _running(provider: str, name: str) -> Cluster:
    cluster = _find(provider, name)
    if not cluster.healthy():
        raise HomeciError(f"{_describe(cluster)} is not running: run `homeci cluster up --provider "
                          f"{cluster.provider} --name {name}`")
    return cluster


def _describe(cluster: Cluster) -> str:
    return cluster.describe()


# -- up -------------------------------------------------------------------------------------------------


@group.command()
@provider_option(AUTO_UP)
@name_option
@click.option("--stack/--no-stack", default=True, show_default=True,
              help="Install the stack (umbrella, drone-pipelines, what the flow needs); --no-stack: a bare "
                   "cluster.")
@helm_option
@values_option
@click.option("--domain", type=params.DnsName(), default=None,
              help="Public DNS suffix the cluster resolves to Traefik (git., ci., registry.); default "
                   f"{contract.RELEASE}.test on real clusters, the chart's default on sim.")
@click.option("--nodes", type=click.IntRange(1, 5), default=None,
              help="Nodes (kind: control plane + workers, default 1; sim: simulated nodes, default 2; "
                   "netns: 1).")
@click.option("--offline/--online", default=None,
              help="kind: build the node image and every image from source (default where no Docker engine "
                   "of this machine answers), or use kind's published node image and upstream images.")
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True,
              help="Seconds to wait for the cluster to be ready.")
@click.option("--build/--no-build", default=True, show_default=True,
              help="Build what is missing first (toolchain binaries, images; Go builds are slow).")
def up(provider: str, name: str, stack: bool, major: str, values: tuple[Path, ...], domain: str | None,
       nodes: int | None, offline: bool | None, timeout: int, build: bool) -> None:
    """A cluster on this machine, with the homeci stack ready for pushes (reuses a healthy one)."""
    chosen, why = choose(provider)
    ui.console.print(f"provider: {chosen} ({why})")
    cluster = _make(chosen, name, domain=domain, nodes=nodes, offline=offline)
    if not stack:
        with ui.step(_describe(cluster)) as detail:
            if build:
                from homeci.cluster import prebuild

                prebuild.run(cluster, stack=False, say=ui.say, progress=detail)
            created = cluster.up(timeout=timeout, progress=detail, build=build)
        _print_cluster(cluster, created)
        return
    from homeci.flow import setup

    workdir = setup.state_dir(cluster)
    with ui.step(f"homeci on {_describe(cluster)} (cluster, umbrella, drone-pipelines)") as detail:
        prepared = setup.prepare(cluster, major=int(major), progress=detail, workdir=workdir,
                                 values_files=[Path(v) for v in values], timeout=timeout, build=build,
                                 say=ui.say)
    _print_stack(prepared)


def _make(provider: str, name: str, *, domain: str | None, nodes: int | None,
          offline: bool | None) -> Cluster:
    if provider == "netns" and (nodes or 1) > 1:
        raise HomeciError("--nodes: the netns provider runs one node; use --provider kind for more")
    if provider != "kind" and offline is False:
        raise HomeciError(f"--online: the {provider} provider builds every image from source (only kind "
                          "can use upstream images)")
    return make(provider, name, domain=domain, nodes=nodes, offline=offline)


def _print_cluster(cluster: Cluster, created: bool) -> None:
    out = ui.out
    verb = "started" if created else "already running, reused"
    out.print(f"{_describe(cluster)} {verb}: API {cluster.server()}")
    out.print(f"export KUBECONFIG={cluster.kubeconfig}")
    port, domain = cluster.https_port(), cluster.domain()
    if port and domain:
        out.print(f"stack URLs once installed (homeci cluster install): https://git.{domain}:{port} "
                  "(and ci., registry.) on 127.0.0.1")


def _print_stack(prepared: Prepared) -> None:
    cluster, done, st = prepared.cluster, prepared.installed, prepared.stack
    out = ui.out
    out.print(f"[bold]homeci is running[/bold] on {_describe(cluster)}: release {done.release} revision "
              f"{done.revision} in namespace {done.namespace} (Pod Security: restricted), pipelines for "
              f"owner {prepared.app.owner} deploying to namespace {prepared.app.namespace}")
    out.print(f"kubeconfig: export KUBECONFIG={cluster.kubeconfig}")
    for w in done.workloads:
        out.print(f"  {w}")
    if not cluster.runs_containers:
        out.print(f"[yellow]{done.pods} pods are SIMULATED by kwok: no container runs, no image is pulled, "
                  "no URL answers.[/yellow] The API objects, admission, scheduling, hooks and Helm lifecycle "
                  "are real.")
        out.print(f"stop it with: homeci cluster down --provider {cluster.provider} --name {cluster.name}  "
                  "(or nox -s down)")
        return
    for label, what in (("git", "Gogs"), ("ci", "Drone"), ("registry", "registry")):
        out.print(f"  {what:9} {st.url(label)}")
    out.print(f"admin: {st.admin_user} (password: kubectl -n {st.namespace} get secret "
              f"{contract.Names(st.release).admin_secret} -o jsonpath='{{.data.password}}' | base64 -d)")
    out.print(f"CA certificate: {st.ca_file} (trust it: see docs/ca-and-trust.md)")
    hosts = " ".join(st.hosts.values())
    out.print(f"the names resolve only inside the cluster: add `127.0.0.1 {hosts}` to /etc/hosts "
              f"(the stack answers on 127.0.0.1:{st.https_port})")
    args = f"--kubeconfig {cluster.kubeconfig}" + (
        f" --connect 127.0.0.1:{st.https_port}" if st.https_port != 443 else "")
    out.print(f"prove the loop: homeci smoke {args}  (from the checkout: nox -s smoke -- {args})")
    out.print(f"stop it with: homeci cluster down --provider {cluster.provider} --name {cluster.name}  "
              "(or nox -s down)")
    out.print("")
    out.print("[bold]Next[/bold]")
    for line in next_steps(st):
        out.print(line)


def next_steps(st: Any) -> list[str]:
    """The three things a person does next, with this stack's real URLs: open Gogs, open Drone, push."""
    git, ci = st.url("git"), st.url("ci")
    owner = st.admin_user
    repo = f"{git}/{owner}/sample-app.git"
    return [
        f"  1. Open Gogs at {git}/ and sign in as {owner} (the password command is above; the browser needs "
        f"the names in /etc/hosts and the CA trusted, docs/ca-and-trust.md); create repository "
        f"sample-app (+ → New Repository).",
        f"  2. Open Drone at {ci}/ and sign in with the same account; press SYNC, open {owner}/sample-app "
        "and press ACTIVATE REPOSITORY.",
        f"  3. Push the sample app: cd examples/sample-app && git init -q -b main && git add -A && "
        f"git commit -qm first && git -c http.sslCAInfo={st.ca_file} push {repo} main  — then watch the "
        f"build in Drone and open https://sample-app.{st.domain}"
        + ("" if st.https_port == 443 else f":{st.https_port}") + "/",
    ]


# -- down, status, kubeconfig ---------------------------------------------------------------------------


@group.command()
@provider_option(AUTO_FIND)
@name_option
@click.option("--keep-images/--no-keep-images", default=True, show_default=True,
              help="netns: keep the node's image store (the images homeci builds, ~1.5 GB) for the next new "
                   "node to start with, instead of importing every image again")
def down(provider: str, name: str, keep_images: bool) -> None:
    """Delete the cluster and everything in it: no process, mount, namespace, cgroup or file of it is left
    (netns keeps the node's image store, one per machine, unless --no-keep-images)."""
    candidates = PROVIDERS if provider == "auto" else (canonical(provider),)
    gone = []
    for candidate in candidates:
        cluster = make(candidate, name)
        if not cluster.dir.exists():
            continue
        with ui.step(f"deleting {_describe(cluster)}"):
            existed = cluster.down(keep_images=keep_images)
        why_not = getattr(cluster, "not_kept", [])  # only providers with an image store to keep say
        if existed and why_not:
            ui.out.print(f"the node's image store was not kept ({'; '.join(why_not)}): the next `up` imports "
                         "every image")
        left = cluster.leftovers()
        if left:
            raise HomeciError(f"left behind after down: {'; '.join(left)}")
        if existed:
            gone.append(candidate)
    ui.out.print(f"cluster {name}: " + (f"deleted ({', '.join(gone)})" if gone else "did not exist"))


@group.command()
@provider_option(AUTO_FIND)
@name_option
def stop(provider: str, name: str) -> None:
    """Shut the cluster down as a machine powers off, keeping all its state for `start`."""
    cluster = _find(provider, name)
    with ui.step(f"stopping {_describe(cluster)}") as detail:
        done = cluster.stop(progress=detail)
    verb = "stopped" if done else "was already stopped"
    ui.out.print(f"{_describe(cluster)} {verb}; its state is kept: `homeci cluster start --provider "
                 f"{cluster.provider} --name {name}` brings it back (`down` deletes it)")


@group.command()
@provider_option(AUTO_FIND)
@name_option
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True,
              help="Seconds to wait for the nodes and the public names.")
def start(provider: str, name: str, timeout: int) -> None:
    """Boot a stopped (or crashed) cluster with its state: Kubernetes restarts every workload."""
    import time

    cluster = _find(provider, name)
    began = time.monotonic()
    with ui.step(f"starting {_describe(cluster)}") as detail:
        done = cluster.start(timeout=timeout, progress=detail)
    if not done:
        ui.out.print(f"{_describe(cluster)} was already running")
        return
    ui.out.print(f"{_describe(cluster)} started in {time.monotonic() - began:.1f}s: API {cluster.server()}; "
                 "its workloads come back by themselves (`homeci status` shows them)")


@group.command()
@provider_option(AUTO_FIND)
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the same fields for every "
                                                      "provider).")
def status(provider: str, name: str, as_json: bool) -> None:
    """Whether the cluster exists and is ready: its processes, API server, version, nodes, stack URL."""
    try:
        cluster = _find(provider, name)
    except HomeciError:
        cluster = make(choose("auto")[0], name)
    st = cluster.status()
    if as_json:
        ui.out.print_json(json.dumps(st.as_json()))
        return
    if not st.exists:
        ui.out.print(f"cluster {name}: not created (run `homeci cluster up --name {name}`)")
        return
    if st.stopped:
        ui.out.print(f"{_describe(cluster)}: stopped, state kept (start it with `homeci cluster start "
                     f"--provider {cluster.provider} --name {name}`)")
        return
    api = f"Kubernetes {st.version}" if st.version else "API server not answering"
    stopped = [n for n, ok in st.processes.items() if not ok]
    procs = f"{sum(st.processes.values())} processes"
    if stopped:
        procs += f" (not running: {', '.join(stopped)})"
    ready = "ready" if st.ready else "NOT ready"
    ui.out.print(f"{_describe(cluster)}: {ready}, {procs}, server {st.server}, {api}, {st.nodes} node(s)")
    ui.out.print(f"kubeconfig: {st.kubeconfig}")
    if st.https:
        ui.out.print(f"stack: {st.https}")


@group.command()
@provider_option(AUTO_FIND)
@name_option
def kubeconfig(provider: str, name: str) -> None:
    """Print the kubeconfig path: export KUBECONFIG=$(homeci cluster kubeconfig)."""
    cluster = _find(provider, name)
    if not cluster.kubeconfig.is_file():
        raise HomeciError(f"{_describe(cluster)} has no kubeconfig: run `homeci cluster up --provider "
                          f"{cluster.provider} --name {name}`")
    click.echo(str(cluster.kubeconfig))


# -- install, images --------------------------------------------------------------------------------------


@group.command()
@provider_option(AUTO_FIND)
@name_option
@helm_option
@values_option
def install(provider: str, name: str, major: str, values: tuple[Path, ...]) -> None:
    """Install (or upgrade) the stack on the running cluster: images, umbrella, drone-pipelines."""
    from homeci.cluster.install import install_stack

    cluster = _running(provider, name)
    with ui.step(f"installing homeci on {_describe(cluster)}") as detail:
        done = install_stack(cluster, major=int(major), values_files=[Path(v) for v in values],
                             progress=detail)
    out = ui.out
    out.print(f"[bold]homeci installed[/bold]: release {done.release} revision {done.revision} in namespace "
              f"{done.namespace} (Pod Security: restricted), Helm {major}, on {_describe(cluster)}")
    for w in done.workloads:
        out.print(f"  {w}")
    port = cluster.https_port()
    if port and done.stack is not None:
        for label in contract.COMPONENTS:
            out.print(f"  {done.stack.url(label)}")


def _images_group() -> click.Group:
    from homeci.commands.images import group as images_group

    return images_group


class _Images(click.Group):
    """``homeci cluster images``: homeci.commands.images (list, build) plus ``load``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_images_group().list_commands(ctx), *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _images_group().get_command(ctx, cmd_name)


@group.group(name="images", cls=_Images)
def images_group() -> None:
    """Images built from source (list, build) and loaded into a cluster's nodes (load)."""


@images_group.command(name="load")
@provider_option(AUTO_FIND)
@name_option
@click.argument("names", nargs=-1)
@click.option("--build/--no-build", default=True, show_default=True,
              help="Build images that are not in the cache yet.")
def images_load(provider: str, name: str, names: tuple[str, ...], build: bool) -> None:
    """Load NAMES (default: every image a default render references) into the cluster's nodes."""
    from homeci import images
    from homeci.cluster.install import default_images

    cluster = _running(provider, name)
    refs = list(names) or default_images()
    for ref in refs:
        images.require(ref)
    if cluster.image_source != "source":
        ui.out.print(f"{_describe(cluster)}: its nodes "
                     f"{'pull upstream images' if cluster.image_source == 'upstream' else 'run no container'}"
                     "; nothing to load")
        return
    if not build:
        missing = [r for r in refs if not images.is_cached(r)]
        if missing:
            raise HomeciError(f"image {missing[0]} is not built: run "
                              f"`homeci cluster images build {missing[0]}`")
    with ui.step(f"loading {len(refs)} image(s) into {_describe(cluster)}") as detail:
        cluster.load_images(refs, progress=detail)
    ui.out.print(f"{len(refs)} image(s) loaded into {_describe(cluster)}")
