"""T2 fixtures: real programs on 127.0.0.1, configured from the umbrella's render (see realprog_harness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.realprog import PublicNames
from homeci_testing.realprog_harness import SCENARIOS, LoopbackTraefik, public_hosts, render
from homeci_testing.support import RELEASE


@pytest.fixture(scope="session", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    """The umbrella scenario (ci/<name>-values.yaml) every T2 fixture renders."""
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(scenario: str) -> list[Manifest]:
    return render(scenario)


@pytest.fixture(scope="session")
def hosts(scenario: str) -> dict[str, str]:
    return public_hosts(scenario)


@pytest.fixture(scope="session")
def ca_file(rendered: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public CA certificate from the rendered ConfigMap <release>-ca (what every pod trusts)."""
    data = manifests.get(rendered, "ConfigMap", f"{RELEASE}-ca").obj["data"]["ca.crt"]
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(data)
    return path


@pytest.fixture(scope="session")
def traefik(rendered: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackTraefik]:
    with LoopbackTraefik(rendered, tmp_path_factory.mktemp("traefik")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def public(traefik: LoopbackTraefik, ca_file: Path) -> PublicNames:
    return traefik.names(ca_file)


