"""Day-two operations on the local real node (backup and restore now; upgrade with data and reboot
to come): each test brings up its own clusters (names ``d2-…``, one at a time) and takes them down.

Marked ``daytwo`` and ``integration``: ``nox -s integration`` runs this folder after the push-to-deploy
tier. Where the local real node cannot run, the tests fail in CI and skip elsewhere, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.daytwo)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_node() -> None:
    """Skip (fail in CI) where the local real node cannot run."""
    from homeci.cluster.local import missing_tools, unsupported_reason

    reason = unsupported_reason()
    if reason is None and missing_tools():
        reason = ("local-cluster binaries not built: run "
                  f"`homeci toolchain install {' '.join(missing_tools())}`")
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the day-two tier must run in CI, but {reason}")
        pytest.skip(reason)
