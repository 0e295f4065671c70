"""Day two on the real node (provider netns), in the order a home server lives it, one cluster at a time.

The modules are numbered and pytest runs them in that order; each leaves the stack serving:

1. ``test_1_upgrade`` — the previous release (packaged) with its own images, the sample app pushed twice
   and served, upgraded to the working tree while a prober measures the app's longest gap; downgrades.
2. ``test_2_renewal`` — a serving certificate made to expire soon is renewed by the CronJob.
3. ``test_3_crash`` — containerd, then the kubelet, killed while a build runs.
4. ``test_4_reboot`` — ``stop`` and ``start`` of the node: the stack comes back by itself.
5. ``test_5_backup_restore`` — the scheduled and the command-line backup; the node destroyed; a new node,
   the restore, the comparison, the next push.

The first four share the session's node ``d2-<pid>`` (fixture ``day_two``); the tier makes it itself
because it starts from the previous release (the session stack of tests/integration has the working tree)
and because the last module destroys it and makes a second node (``d2-<pid>b``) for the restore.
``nox -s integration`` runs this folder after the other real-cluster tiers, once their cluster is down.
Where the real node cannot run, the tier fails in CI and skips elsewhere, saying why; with another
provider (``--provider kind``) it skips: it is a real-node tier.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci.cluster.netns import NetnsCluster
from homeci.flow import driver
from homeci_testing.daytwo import DayTwo, PreviousRelease, phases, progress, step_images

PREFIX = "d2-"


@pytest.fixture(scope="session")
def real_node(request: pytest.FixtureRequest) -> None:
    """Skip (fail in CI) where the real node cannot run; skip for another provider."""
    from homeci.cluster import choose, prereqs

    provider, why = choose(request.config.getoption("--provider"))
    if provider != "netns":
        pytest.skip(f"the day-two tier runs on the real node (netns); this run's provider is {provider} "
                    f"({why}): run `nox -s daytwo`")
    missing = prereqs.check("netns", build=True)
    if missing:
        message = prereqs.explain("netns", missing)
        if os.environ.get("CI"):
            pytest.fail(f"the day-two tier must run in CI, but {message}")
        pytest.skip(message)
    _remove_stale_nodes()


def _remove_stale_nodes() -> None:
    """Only one day-two node at a time: take down what a killed earlier run left."""
    from homeci.cluster.netns import layout

    base = layout.root()
    for d in base.glob(f"{PREFIX}*") if base.is_dir() else []:
        pid = d.name.removeprefix(PREFIX).rstrip("b")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            NetnsCluster(d.name).down()


def node_name(suffix: str = "") -> str:
    return f"{PREFIX}{os.getpid()}{suffix}"


@pytest.fixture(scope="session")
def previous(real_node: None, tmp_path_factory: pytest.TempPathFactory) -> PreviousRelease:
    from homeci_testing.daytwo import previous_release

    return previous_release(tmp_path_factory.mktemp("previous"))


@pytest.fixture(scope="session")
def day_two(real_node: None, previous: PreviousRelease,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayTwo]:
    """The node with the previous release installed (its own chart, its own images) and the sample app
    pushed twice and served. Taken down at the end (the backup-restore module takes it down itself)."""
    from homeci.cluster.install import TARGET, install_stack
    from homeci.cluster.provider import terminate_as_interrupt
    from homeci.paths import sample_app

    workdir = tmp_path_factory.mktemp("day-two")
    cluster = NetnsCluster(node_name())
    say = progress("d2")
    say(f"node {cluster.name}; previous release {previous.label} ({previous.baseline.source} "
        f"{previous.baseline.ref[:12]})")
    with terminate_as_interrupt():
        try:
            cluster.up(timeout=600, build=True, progress=say)
            installed = install_stack(cluster, progress=say, workdir=workdir / "stack",
                                      umbrella=previous.umbrella, pipelines_chart=previous.pipelines)
            # the working tree's sample app names today's step images; the older charts' render does not
            cluster.load_images(step_images(sample_app()), say)
            st = installed.stack
            app = driver.App(source=sample_app(), owner=st.admin_user, name="sample-app", namespace=TARGET,
                             host=f"sample-app.{st.domain}")
            driver.ensure_repository(st, app)
            repo = driver.prepare(app, workdir / "app", domain=st.domain)
            d2 = DayTwo(cluster, installed, app, repo, previous, workdir)
            for label in ("previous", "previous"):
                rnd = d2.push(label)
                assert rnd.ok, f"push on the previous release {previous.label}: {phases(rnd)}"
        except BaseException:
            cluster.down(keep_logs=True)
            raise
        try:
            yield d2
        finally:
            cluster.down()
