"""T3: the whole push-to-deploy loop on a real cluster (``nox -s integration [-- --provider kind]``).

The cluster is the session's ``real_stack`` (tests/conftest.py): one per run of the provider
``--provider`` names, shared with tests/providers. The loop needs containers: on the simulated cluster
these tests skip, saying so."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from homeci import paths
from homeci.flow import setup
from homeci_testing import team


@pytest.fixture(scope="session")
def prepared(real_stack: Any) -> setup.Prepared:
    if not real_stack.cluster.runs_containers:
        pytest.skip(f"the {real_stack.provider} provider runs no container: the loop needs a real one "
                    "(--provider auto, netns or kind)")
    assert isinstance(real_stack, setup.Prepared)
    return real_stack


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
    the second app in the registry (what an air-gapped operator seeds; see docs/app-developers.md)."""
    from homeci import images
    from homeci.flow import driver

    stack = prepared.stack
    team.create_account(stack, ALICE)
    team.grant_namespace(stack, ALICE, prepared.kubeconfig)
    if prepared.cluster.image_source == "source":
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

    from homeci.commands.smoke import path_report, report
    from homeci.flow import driver

    rounds = []
    stamp = time.strftime("%H%M%S")
    for i in (1, 2):
        rnd = driver.deliver(prepared.stack, prepared.app, repo, f"1.0.{i}-t3.{stamp}", timeout=900,
                             progress=lambda line: print(f"[t3] {line}", flush=True))
        rounds.append(rnd)
        if not rnd.ok:
            break
    console = Console(force_terminal=False, width=160)
    console.print(report(rounds))
    console.print(path_report(rounds))
    return rounds
