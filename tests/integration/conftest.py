"""T3: the whole push-to-deploy loop on a real cluster (``nox -s integration``).

One cluster per session: kind where a Docker engine answers, else the local real node. Where neither
can run, the tests fail in CI (``CI`` set: the real-cluster tier must run there) and skip elsewhere,
always saying why.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeci import paths
from homeci.flow import setup
from homeci_testing import team

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[setup.Prepared]:
    provider, why = setup.provider_available()
    if provider is None:
        if os.environ.get("CI"):
            pytest.fail(f"T3 must run in CI, but {why}")
        pytest.skip(why)
    if provider == "local":
        from homeci.cluster.local.cluster import missing_tools

        missing = missing_tools()
        if missing:
            message = f"local-cluster binaries not built: run `homeci toolchain install {' '.join(missing)}`"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    attach = os.environ.get("HOMECI_T3_CLUSTER")
    if attach and provider == "local":
        # a developer's running stack (homeci cluster up --provider local --name <it>): attach, keep it
        yield setup.attach_local(attach, workdir=tmp_path_factory.mktemp("stack"))
        return
    name = f"it{os.getpid()}"
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    ready: setup.Prepared | None = None
    try:
        ready = setup.prepare(name, provider=provider, workdir=tmp_path_factory.mktemp("stack"),
                              progress=lambda line: print(f"[t3] {line}", flush=True))
        yield ready
    finally:
        if ready is not None:
            ready.cluster.down()
        else:
            # a failed prepare still leaves nothing behind
            if provider == "local":
                from homeci.cluster.local import LocalCluster

                LocalCluster(name).down()
            else:
                from homeci.cluster import kind

                kind.KindCluster(name).down()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


# --- a team member who is not the admin (the person and attack tiers) -----------------------------------

# A fresh password per session; HOMECI_T3_ALICE_PASSWORD when attached to a stack where she exists.
ALICE = team.Member(name="alice",
                    password=os.environ.get("HOMECI_T3_ALICE_PASSWORD") or "alice-" + uuid.uuid4().hex[:12],
                    email="alice@homeci.invalid", namespace="team", hosts=("hello",))
STATIC_SITE = paths.static_site()


@pytest.fixture(scope="session")
def alice(prepared: setup.Prepared) -> team.Member:
    """The admin's part, done once per stack: alice's Gogs account, the app namespace `team` and alice as
    its owner in drone-pipelines (two `helm upgrade`s, as an operator runs them), and the base images of
    the second app in the registry (what an air-gapped operator seeds; see the README)."""
    from homeci import images
    from homeci.flow import driver

    stack = prepared.stack
    team.create_account(stack, ALICE)
    team.grant_namespace(stack, ALICE, prepared.kubeconfig)
    if prepared.provider in ("local", "netns"):
        driver.seed_base_images(stack, STATIC_SITE / "Dockerfile", lambda ref: images.build([ref])[ref])
    return ALICE


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the person tier saves its screenshots: $HOMECI_ARTIFACTS, else a folder of the test session."""
    folder = Path(os.environ["HOMECI_ARTIFACTS"]) if os.environ.get("HOMECI_ARTIFACTS") else (
        tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the sample app, pushed twice (shared by every module that needs it served) ---------------------

@pytest.fixture(scope="session")
def repo(prepared: setup.Prepared, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from homeci.flow import driver

    driver.ensure_repository(prepared.stack, prepared.app)
    return driver.prepare(prepared.app, tmp_path_factory.mktemp("repo"), domain=prepared.stack.domain)


@pytest.fixture(scope="session")
def served(prepared: setup.Prepared, repo: Path) -> list[Any]:
    """Two pushes of the sample app: the first creates the app, the second updates it; both served."""
    import time

    from rich.console import Console

    from homeci.commands.smoke import report
    from homeci.flow import driver

    rounds = []
    stamp = time.strftime("%H%M%S")
    for i in (1, 2):
        rnd = driver.deliver(prepared.stack, prepared.app, repo, f"1.0.{i}-t3.{stamp}", timeout=900,
                             progress=lambda line: print(f"[t3] {line}", flush=True))
        rounds.append(rnd)
        if not rnd.ok:
            break
    Console(force_terminal=False, width=160).print(report(rounds))
    return rounds
