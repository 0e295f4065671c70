"""T3: the whole push-to-deploy loop on a real cluster (``nox -s integration``).

One cluster per session: kind where a Docker engine answers, else the local real node. Where neither
can run, the tests fail in CI (``CI`` set: the real-cluster tier must run there) and skip elsewhere,
always saying why.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci.flow import setup

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
