"""Fixtures for the chart-repository tests: one signed repository (previous release + working tree) per
session, served over HTTPS on 127.0.0.1, and a fresh Helm 3 or Helm 4 consumer per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci import signing
from homeci.helm import Helm
from homeci_testing.chartrepo import (
    Served,
    UpgradeRepository,
    build_upgrade_repository,
    consumer,
    gpg_signer,
    serve_https,
)


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[signing.ProvenanceSigner]:
    with gpg_signer(tmp_path_factory.mktemp("gpg")) as s:
        yield s


@pytest.fixture(scope="session")
def repository(signer: signing.ProvenanceSigner,
               tmp_path_factory: pytest.TempPathFactory) -> UpgradeRepository:
    return build_upgrade_repository(tmp_path_factory.mktemp("repo"), signer)


@pytest.fixture(scope="session")
def served(repository: UpgradeRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_https(repository.directory, tmp_path_factory.mktemp("https")) as s:
        yield s


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def helm(request: pytest.FixtureRequest, tmp_path: Path) -> Helm:
    """A consumer on a clean machine: Helm 3 or 4 with a Helm home of its own."""
    return consumer(request.param, tmp_path / "home")
