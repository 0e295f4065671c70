"""The homeci CA certificate is present in every target namespace, and only the certificate.
Parametrized over every charts/drone-pipelines/ci scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from homeci import manifests, rendering
from homeci_testing import drone

from .conftest import KUBE_VERSION as KUBE
from .conftest import NAMESPACE, render_pipelines
from .conftest import PIPELINES as CHART
from .conftest import PIPELINES_RELEASE as RELEASE


@pytest.mark.parametrize("scenario", rendering.scenarios(CHART), ids=rendering.scenario_name)
def test_ca_configmap_per_target(scenario: Path) -> None:
    values = drone.chart_values(scenario, chart=CHART)
    objs = render_pipelines([scenario])
    name, key = values["ca"]["configMapName"], values["ca"]["key"]
    expected = x509.load_pem_x509_certificate(values["ca"]["pem"].encode())
    assert targets_of(values), (
        f"{rendering.scenario_name(scenario)}: a scenario without targets tests nothing"
    )
    for ns in targets_of(values):
        found = [m for m in manifests.by_kind(objs, "ConfigMap") if m.namespace == ns and m.name == name]
        assert len(found) == 1, f"ConfigMap/{name} missing in target namespace {ns}"
        data = found[0].obj["data"]
        where = f"ConfigMap/{name} in {ns}"
        assert list(data) == [key], f"{where}.data: expected only key {key}, got {list(data)}"
        assert "PRIVATE KEY" not in data[key], f"{where}.data.{key} contains a private key"
        cert = x509.load_pem_x509_certificate(data[key].encode())
        assert cert == expected, f"{where}.data.{key} is not the configured CA"
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca, f"{where}.data.{key} is not a CA certificate"


def targets_of(values: dict[str, Any]) -> list[str]:
    return [t["namespace"] for t in values["targets"]]


def test_private_key_is_refused(tmp_path: Path) -> None:
    from homeci.errors import HomeciError
    from homeci.helm import Helm

    bad = tmp_path / "bad-values.yaml"
    bad.write_text(
        "targets: [{namespace: apps, owners: [homeci]}]\n"
        "registry: {auth: {username: u, password: p}}\n"
        'ca: {pem: "-----BEGIN CERTIFICATE-----\\n-----BEGIN PRIVATE KEY-----\\n"}\n'
    )
    with pytest.raises(HomeciError, match=r"ca\.pem: not a PEM certificate"):
        Helm(3).template(CHART, release=RELEASE, namespace=NAMESPACE, values_files=[bad], kube_version=KUBE)
