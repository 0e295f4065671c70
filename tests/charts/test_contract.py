"""homeci.contract (the Python side of the cross-chart contract) agrees with what the charts render, for
every scenario: the hosts of the Ingresses and the names of the shared objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci import contract
from homeci import manifests as mf

from .conftest import RELEASE, SCENARIOS, dig, render_umbrella, scenario_values

INGRESS_OF = {"git": "gogs", "ci": "drone", "registry": "registry"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_ingress_hosts_follow_the_host_rule(scenario: Path) -> None:
    values = scenario_values(scenario)
    objs = render_umbrella([scenario])
    served = {rule["host"]: m.name for m in objs if m.kind == "Ingress" for rule in m.obj["spec"]["rules"]}
    for component, chart in INGRESS_OF.items():
        if dig(values, f"{chart}.enabled", True) is False:
            continue
        expected = contract.host(component, values)
        assert expected in served, (f"{scenario.name}: no Ingress serves {expected} "
                                    f"(contract.host({component!r})); Ingress hosts: {sorted(served)}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_shared_object_names(scenario: Path) -> None:
    values = scenario_values(scenario)
    objs = render_umbrella([scenario])
    names = contract.Names(RELEASE)
    have = {(m.kind, m.name) for m in objs}
    # The certificate program writes ConfigMap <release>-ca and Secret <release>-tls: the names it is given.
    hook = mf.get(objs, "Job", names.certs_hook)
    env = {e["name"]: e.get("value") for _, c in hook.containers() for e in c.get("env") or []}
    for key, want in (("CA_CONFIGMAP", names.ca_configmap), ("TLS_SECRET", names.tls_secret)):
        assert env.get(key) == want, (
            f"{scenario.name}: {hook.ref} env {key}={env.get(key)!r}, contract says {want}")
    expected = [("CronJob", names.certs)]
    if dig(values, "gogs.enabled", True) is not False:
        expected.append(("Service", names.gogs))
    if dig(values, "drone.enabled", True) is not False:
        expected += [("Service", names.drone), ("Deployment", names.drone_runner),
                     ("Namespace", names.build_namespace)]
    if dig(values, "registry.enabled", True) is not False:
        expected.append(("Service", names.registry))
    if dig(values, "traefik.enabled", True) is not False:
        expected.append(("Deployment", names.traefik))
    missing = [f"{kind}/{name}" for kind, name in expected if (kind, name) not in have]
    assert not missing, f"{scenario.name}: contract.Names({RELEASE!r}) names objects not rendered: {missing}"


def test_defaults_come_from_the_umbrella_values() -> None:
    labels = contract.default_host_labels()
    assert contract.host("registry") == f"{labels['registry']}.{contract.default_domain()}"
    custom = {"global": {"domain": "home.lan", "hosts": {"git": "code"}}}
    assert contract.host("git", custom) == "code.home.lan"
