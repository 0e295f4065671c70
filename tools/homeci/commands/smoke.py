"""``homeci smoke``: push a sample app through an installed homeci stack and report every phase."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.table import Table

from homeci import paths, ui
from homeci.commands import params
from homeci.errors import HomeciError, UsageError
from homeci.flow import driver, stack, timeline
from homeci.flow.web import DirectWeb, PublicNames, Web


def report(rounds: list[driver.Round]) -> Table:
    table = Table("round", "version", "phase", "seconds", "status", "detail", title="push to deploy")
    for i, rnd in enumerate(rounds, 1):
        for ph in rnd.phases:
            secs = "" if ph.seconds is None else f"{ph.seconds:.1f}"
            first = ph.detail.splitlines()[0] if ph.detail else ""
            table.add_row(str(i), rnd.version, ph.name, secs, ph.status, first)
    return table


def path_report(rounds: list[driver.Round]) -> Table:
    """Where each push's time went: push → served as consecutive wait/work segments (they add up to the
    total), kaniko's and the rollout's own figures as info rows beside them."""
    table = Table("round", "segment", "seconds", "kind", "detail", title="where the time goes")
    for i, rnd in enumerate(rounds, 1):
        if not rnd.path:
            continue
        for seg in rnd.path:
            name = seg.name if seg.kind != "info" else f"  ({seg.name})"
            table.add_row(str(i), name, f"{seg.seconds:.2f}", seg.kind, seg.detail)
        wait, work = timeline.totals(rnd.path)
        table.add_row(str(i), "push → served", f"{wait + work:.2f}", "total",
                      f"waiting {wait:.1f} s, working {work:.1f} s", end_section=True)
    return table


def _connect(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--connect is 127.0.0.1:<port> or localhost:<port> (where `homeci cluster up` said it answers)."""
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r}: give 127.0.0.1:<port> (as `homeci cluster up` printed)", ctx,
                                 param)
    return value


def _web_factory(connect: str | None) -> object:
    if not connect:
        return DirectWeb
    port = connect.rpartition(":")[2]

    def factory(ca_file: Path) -> Web:
        return PublicNames({"https": int(port)}, ca_file)

    return factory


@click.command(name="smoke")
@params.stack_options
@click.option("--app", "app_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="App folder to push (default: the sample app, examples/sample-app).")
@click.option("--repo", type=params.Name(63), default="sample-app", show_default=True,
              help="Repository name in Gogs (also the app's host label, so a DNS label).")
@click.option("--target", type=params.NAMESPACE, default="apps", show_default=True,
              help="Namespace the pipeline deploys to.")
@click.option("--connect", default=None, metavar="127.0.0.1:PORT", callback=_connect,
              help="Reach the public names through this loopback port (as `homeci cluster up` printed).")
@click.option("--rounds", type=click.IntRange(1, 5), default=2, show_default=True,
              help="Pushes: the first creates the app, each later one updates it.")
@click.option("--timeout", type=click.IntRange(30, 3600), default=900, show_default=True,
              help="Seconds each build may take.")
def command(kubeconfig: Path | None, namespace: str, release: str, app_dir: Path | None, repo: str,
            target: str, connect: str | None, rounds: int, timeout: int) -> None:
    """Prove the loop on your stack: push → Drone build → image → rollout → HTTPS answer, per phase."""
    from kubernetes import client

    from homeci import kubeaccess

    source = app_dir or paths.sample_app()
    if not (source / ".drone.yml").is_file():
        raise UsageError(f"{source}: no .drone.yml; --app must be an app folder like examples/sample-app")
    api = kubeaccess.api_client(kubeconfig)
    kubeaccess.probe(api, kubeconfig)
    with tempfile.TemporaryDirectory(prefix="homeci-smoke-") as tmp:
        work = Path(tmp)
        try:
            st = stack.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api), namespace, release,
                                    work, _web_factory(connect))
        except Exception as exc:  # urllib3 errors when the API server is unreachable
            if isinstance(exc, HomeciError):
                raise
            raise kubeaccess.unreachable(exc, api, kubeconfig) from None
        if connect:
            st.https_port = int(connect.rpartition(":")[2])
            st.git_resolve = [f"{h}:{st.https_port}:127.0.0.1" for h in st.hosts.values()]
        app = driver.App(source=source, owner=st.admin_user, name=repo, namespace=target,
                         host=f"{repo}.{st.domain}")
        with ui.step(f"smoke: {app.owner}/{app.name} through {st.url('git')}") as detail:
            rounds_done = driver.run(st, app, work, rounds=rounds, timeout=timeout, progress=detail)
    ui.out.print(report(rounds_done))
    if any(r.path for r in rounds_done):
        ui.out.print(path_report(rounds_done))
    failed = [r for r in rounds_done if not r.ok]
    if failed or len(rounds_done) < rounds:
        bad = failed[0] if failed else rounds_done[-1]
        details = [p.detail for p in bad.phases if p.status not in ("ok", "success") and p.detail]
        if details:
            ui.console.print(details[0], markup=False)  # the failed step's log tail
        raise HomeciError(f"push {bad.version} did not deploy: " + (details[0].splitlines()[0] if details else
                                                                       "see the table above"))
