"""Optional PodDisruptionBudgets: none by default, exactly those a scenario enables; when enabled, each
selects exactly the pods of its workload (the Deployment's own selector) with the maxUnavailable asked
for; a count the schema does not take is refused naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci.helm import HelmError
from homeci_testing.support import render_umbrella

from .conftest import dig, scenario_values
from .refusals import SCHEMA_REFUSAL, text_of

# values path -> the Deployment its budget protects
BUDGETS = {
    "gogs": "homeci-gogs",
    "registry": "homeci-registry",
    "traefik": "homeci-traefik",
    "drone.server": "homeci-drone",
    "drone.runner": "homeci-drone-runner",
}


def test_exactly_the_budgets_a_scenario_enables(scenario: Path, scenario_id: str) -> None:
    values = scenario_values(scenario)
    wanted = sorted(name for path, name in BUDGETS.items()
                    if dig(values, f"{path}.podDisruptionBudget.enabled", False))
    objs = render_umbrella([scenario])
    pdbs = sorted(m.name for m in objs if m.kind == "PodDisruptionBudget")
    assert pdbs == wanted, f"{scenario_id}: PodDisruptionBudgets rendered {pdbs}, enabled {wanted}"


@pytest.mark.parametrize("value", ["1", "0", "50%"])
def test_each_budget_selects_its_workload(value: str) -> None:
    sets = [f"{path}.podDisruptionBudget.enabled=true" for path in BUDGETS]
    sets += [f"{path}.podDisruptionBudget.maxUnavailable={value}" for path in BUDGETS]
    objs = render_umbrella(sets=sets)
    deployments = {m.name: m for m in objs if m.kind == "Deployment"}
    pdbs = {m.name: m for m in objs if m.kind == "PodDisruptionBudget"}
    assert sorted(pdbs) == sorted(BUDGETS.values()), f"PodDisruptionBudgets rendered: {sorted(pdbs)}"
    want: object = int(value) if value.isdigit() else value
    for path, name in BUDGETS.items():
        spec = pdbs[name].obj["spec"]
        selector = deployments[name].obj["spec"]["selector"]["matchLabels"]
        assert spec["selector"]["matchLabels"] == selector, (
            f"PodDisruptionBudget/{name}.spec.selector.matchLabels {spec['selector']['matchLabels']} != "
            f"Deployment/{name}.spec.selector.matchLabels {selector}")
        assert spec == {"maxUnavailable": want, "selector": spec["selector"]}, (
            f"PodDisruptionBudget/{name}.spec from {path}: {spec}")


@pytest.mark.parametrize("value", ["-1", "150%", "one", "null"])
@pytest.mark.parametrize("path", sorted(BUDGETS))
def test_a_bad_count_is_refused_by_the_schema(path: str, value: str) -> None:
    sets = [f"{path}.podDisruptionBudget.enabled=true", f"{path}.podDisruptionBudget.maxUnavailable={value}"]
    with pytest.raises(HelmError) as info:
        render_umbrella(sets=sets)
    text = text_of(info.value)
    assert SCHEMA_REFUSAL in text or "values.schema.json" in text, text[-300:]
    assert "maxUnavailable" in text, f"the refusal does not name the key: {text[-300:]}"
