"""Shared test configuration: everything common comes from ``homeci_testing.support`` (paths, the release,
the Kubernetes versions, cached renders, the in-process CLI runner, the chart x scenario catalogue).

The real-cluster tiers (tests/integration, tests/providers) share one cluster with the stack installed per
session, of the provider ``--provider`` names (``nox -s integration -- --provider kind``): it is made here
so that both folders, run together, use the same one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.support import CHARTS, ROOT, UMBRELLA, Result, run_cli

__all__ = ["CHARTS", "ROOT", "UMBRELLA", "Result", "run_cli"]


def pytest_addoption(parser: pytest.Parser) -> None:
    from homeci.cluster import CHOICES

    group = parser.getgroup("homeci")
    group.addoption("--provider", choices=CHOICES, default=os.environ.get("HOMECI_TEST_PROVIDER", "sim"),
                    help="Provider of the real-cluster tiers' cluster (tests/integration, tests/providers); "
                         "auto = what `homeci cluster up` would pick. Default sim (no container runs).")
    group.addoption("--nodes", type=int, default=None,
                    help="Nodes of that cluster (kind: default 2, so a build on one node is pulled on "
                         "another).")


# Each tier's folder and the markers its tests carry (`pytest -m realprog`, `-m "not integration"`); the
# day-two tier is a real-cluster tier too, so `nox -s test` (not integration) leaves it out.
TIER_MARKERS = {"sim": ("sim",), "realprog": ("realprog",), "netns": ("netns",), "providers": ("providers",),
                "integration": ("integration",), "daytwo": ("daytwo", "integration")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(tests).parts
        for marker in TIER_MARKERS.get(parts[0], ()) if len(parts) > 1 else ():
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def host_before() -> dict[str, Any]:
    """The host as a real cluster must leave it: iptables rules, network namespaces, kernel settings."""
    from homeci_testing.clusters import host_state

    return host_state()


@pytest.fixture(scope="session")
def real_stack(request: pytest.FixtureRequest, host_before: dict[str, Any],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One cluster of ``--provider`` with the stack installed (homeci.flow.setup), for the whole session.

    Where the provider cannot run, the session fails in CI (``CI`` set: the tier must run there) and
    skips elsewhere, saying why."""
    from homeci.cluster import choose, make, prereqs
    from homeci.cluster.provider import terminate_as_interrupt
    from homeci.flow import setup

    provider, why = choose(request.config.getoption("--provider"))
    missing = prereqs.check(provider, build=True)
    if missing:
        message = prereqs.explain(provider, missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    nodes = request.config.getoption("--nodes") or (2 if provider == "kind" else None)
    # HOMECI_T3_CLUSTER: a developer's running stack of that name (homeci cluster up --name ...), reused
    # as it is and left running afterwards.
    keep = os.environ.get("HOMECI_T3_CLUSTER")
    cluster = make(provider, keep or f"it{os.getpid()}", nodes=nodes)
    print(f"\n[stack] provider {provider} ({why}), cluster {cluster.name}", flush=True)
    with terminate_as_interrupt():
        try:
            prepared = setup.prepare(cluster, workdir=tmp_path_factory.mktemp("stack"), timeout=600,
                                     progress=lambda line: print(f"[stack] {line}", flush=True))
        except BaseException:
            cluster.down(keep_logs=True)  # the error names a log: it stays for CI's artifacts
            raise
        try:
            yield prepared
        finally:
            if not keep:
                cluster.down()
