"""Shared test configuration: repository paths and the umbrella's scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "charts"
UMBRELLA = CHARTS / "homeci-umbrella"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
