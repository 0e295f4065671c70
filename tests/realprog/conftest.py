"""T2 fixtures: real programs on 127.0.0.1, configured from the umbrella's render (see realprog_harness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from drone_stack import Api, assert_gone, secret_data

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.realprog import ClusterNames, PublicNames
from homeci_testing.realprog_harness import (
    SCENARIOS,
    LoopbackDrone,
    LoopbackGogs,
    LoopbackTraefik,
    binary,
    public_hosts,
    render,
)
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




# -- Gogs + Drone (with its Gogs bridge) wired by in-cluster names: one stack per test module ----------
@pytest.fixture(scope="module")
def names(tmp_path_factory: pytest.TempPathFactory) -> ClusterNames:
    why = ClusterNames.unavailable()
    if why:
        pytest.skip(f"in-cluster names cannot resolve to 127.0.0.1 for the programs: {why}")
    return ClusterNames(tmp_path_factory.mktemp("names"))


@pytest.fixture(scope="module")
def gogs(rendered: list[Manifest], names: ClusterNames,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackGogs]:
    with LoopbackGogs(rendered, tmp_path_factory.mktemp("gogs"), binary("gogs"), names=names) as server:
        yield server
    assert_gone(server.program)


@pytest.fixture(scope="module")
def drone(rendered: list[Manifest], names: ClusterNames, gogs: LoopbackGogs,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackDrone]:
    """The Drone server and its Gogs bridge (Deployment/<release>-drone's two containers)."""
    with LoopbackDrone(rendered, tmp_path_factory.mktemp("drone"), binary("drone-server"), names) as server:
        yield server
    assert_gone(server.program)
    assert_gone(server.bridge.program)


@pytest.fixture(scope="module")
def admin(rendered: list[Manifest]) -> dict[str, str]:
    """The admin identity from the rendered Secret <release>-admin."""
    return secret_data(rendered, f"{RELEASE}-admin")


@pytest.fixture(scope="module")
def machine_token(rendered: list[Manifest]) -> str:
    return secret_data(rendered, f"{RELEASE}-drone-machine")["token"]


@pytest.fixture(scope="module")
def api(drone: LoopbackDrone, machine_token: str) -> Api:
    """Drone's API as the admin (the machine token)."""
    return Api(drone.url, machine_token)
