"""The provider contract's last clause: ``down`` leaves nothing behind. Destructive, so it is its own module,
run after every other tier that shares the session's cluster (``nox -s integration`` names it last)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from homeci.flow.setup import Prepared
from homeci_testing.clusters import host_changes
from homeci_testing.support import run_cli


def test_zz_down_leaves_nothing_behind(real_stack: Prepared, host_before: dict[str, Any]) -> None:
    if os.environ.get("HOMECI_T3_CLUSTER"):
        pytest.skip("HOMECI_T3_CLUSTER names a developer's stack, which the run keeps")
    cluster = real_stack.cluster
    result = run_cli("cluster", "down", "--provider", cluster.provider, "--name", cluster.name)
    assert result.exit_code == 0, f"homeci cluster down: {result.stderr or result.stdout}"
    assert "deleted" in result.stdout, result.stdout
    assert cluster.leftovers() == [], f"{cluster.describe()} left: {cluster.leftovers()}"
    assert not cluster.exists() and not cluster.dir.exists(), f"{cluster.dir} still there"
    assert cluster.status().exists is False
    assert host_changes(host_before) == [], "the host changed"
