"""Shared test configuration: everything common comes from ``homeci_testing.support`` (paths, the release,
the Kubernetes versions, cached renders, the in-process CLI runner, the chart x scenario catalogue)."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci_testing.support import CHARTS, ROOT, UMBRELLA, Result, run_cli

__all__ = ["CHARTS", "ROOT", "UMBRELLA", "Result", "run_cli"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT

