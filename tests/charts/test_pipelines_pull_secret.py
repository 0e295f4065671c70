"""The registry pull Secret in every target namespace is a valid dockerconfigjson for the registry
host with the configured credentials. Parametrized over every charts/drone-pipelines/ci scenario."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from homeci import manifests, rendering
from homeci_testing import drone

from .conftest import PIPELINES as CHART
from .conftest import render_pipelines


@pytest.mark.parametrize("scenario", rendering.scenarios(CHART), ids=rendering.scenario_name)
def test_pull_secret_per_target(scenario: Path) -> None:
    values = drone.chart_values(scenario, chart=CHART)
    objs = render_pipelines([scenario])
    stack = values["stack"]
    host = values["registry"]["host"] or f"{stack['hosts']['registry']}.{stack['domain']}"
    user, password = values["registry"]["auth"]["username"], values["registry"]["auth"]["password"]
    name = values["registry"]["pullSecretName"]
    for target in values["targets"]:
        ns = target["namespace"]
        found = [m for m in manifests.by_kind(objs, "Secret") if m.namespace == ns and m.name == name]
        assert len(found) == 1, f"Secret/{name} missing in target namespace {ns}"
        secret = found[0]
        where = f"Secret/{name} in {ns}"
        assert secret.obj.get("type") == "kubernetes.io/dockerconfigjson", f"{where}.type"
        assert set(secret.obj["data"]) == {".dockerconfigjson"}, f"{where}.data keys"
        config = json.loads(base64.b64decode(secret.obj["data"][".dockerconfigjson"]))
        assert list(config) == ["auths"] and list(config["auths"]) == [host], (
            f"{where}: auths must hold exactly the registry host {host}, got {list(config.get('auths', {}))}"
        )
        entry = config["auths"][host]
        assert base64.b64decode(entry["auth"]).decode() == f"{user}:{password}", f"{where}.auths[{host}].auth"
        assert (entry["username"], entry["password"]) == (user, password), (
            f"{where}.auths[{host}] credentials"
        )


def test_registry_host_follows_the_stack_host_label() -> None:
    """Without registry.host, the registry is <stack.hosts.registry>.<stack.domain> — the host the umbrella
    serves it at (homeci-lib.registryHost) — in the pull Secrets and in the registered templates alike."""
    scenario = CHART / "ci" / "two-owners-values.yaml"
    values = drone.chart_values(scenario, chart=CHART)
    assert not values["registry"]["host"], f"{scenario.name} sets registry.host: pick another scenario"
    host = f"images.{values['stack']['domain']}"
    objs = render_pipelines([scenario], ["stack.hosts.registry=images"])
    name = values["registry"]["pullSecretName"]
    for secret in [m for m in manifests.by_kind(objs, "Secret") if m.name == name]:
        config = json.loads(base64.b64decode(secret.obj["data"][".dockerconfigjson"]))
        assert list(config["auths"]) == [host], f"{secret.ref}: auths {list(config['auths'])}, not [{host}]"
    templates = [m for m in manifests.by_kind(objs, "ConfigMap") if "$d_registry" in json.dumps(m.obj)]
    assert templates, "no ConfigMap carries the pipeline templates' $d_registry"
    for cm in templates:
        assert f'$d_registry := \\"{host}\\"' in json.dumps(cm.obj), f"{cm.ref}: $d_registry is not {host}"


@pytest.mark.parametrize("scenario", rendering.scenarios(CHART), ids=rendering.scenario_name)
def test_no_secret_in_configmaps(scenario: Path) -> None:
    values = drone.chart_values(scenario, chart=CHART)
    objs = render_pipelines([scenario])
    secrets = [s for s in (values["registry"]["auth"]["password"], values["drone"]["token"]["value"]) if s]
    for cm in manifests.by_kind(objs, "ConfigMap"):
        text = json.dumps(cm.obj)
        for s in secrets:
            assert s not in text, f"{cm.ref}: a credential appears literally in a ConfigMap"
