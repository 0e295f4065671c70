"""Optional PodDisruptionBudgets: none by default, exactly those a scenario enables; when enabled, each
selects exactly the pods of its workload (the Deployment's own selector) and carries the one field asked
for; both fields or neither are refused with one sentence naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci.helm import HelmError
from homeci_testing.support import render_umbrella

from .conftest import dig, scenario_values
from .refusals import fail_sentence, sentence_problems, text_of

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


@pytest.mark.parametrize("setting", [["maxUnavailable=1"], ["maxUnavailable=0"], ["maxUnavailable=null",
                                                                                   "minAvailable=50%"]],
                         ids=["maxUnavailable 1", "maxUnavailable 0", "minAvailable 50%"])
def test_each_budget_selects_its_workload(setting: list[str]) -> None:
    sets = [f"{path}.podDisruptionBudget.enabled=true" for path in BUDGETS]
    sets += [f"{path}.podDisruptionBudget.{s}" for path in BUDGETS for s in setting]
    objs = render_umbrella(sets=sets)
    deployments = {m.name: m for m in objs if m.kind == "Deployment"}
    pdbs = {m.name: m for m in objs if m.kind == "PodDisruptionBudget"}
    assert sorted(pdbs) == sorted(BUDGETS.values()), f"PodDisruptionBudgets rendered: {sorted(pdbs)}"
    field, _, raw = setting[-1].partition("=")
    want: object = int(raw) if raw.isdigit() else raw
    for path, name in BUDGETS.items():
        spec = pdbs[name].obj["spec"]
        selector = deployments[name].obj["spec"]["selector"]["matchLabels"]
        assert spec["selector"]["matchLabels"] == selector, (
            f"PodDisruptionBudget/{name}.spec.selector.matchLabels {spec['selector']['matchLabels']} != "
            f"Deployment/{name}.spec.selector.matchLabels {selector}")
        assert spec.get(field) == want, f"PodDisruptionBudget/{name}.spec.{field} from {path}: {spec}"
        other = "minAvailable" if field == "maxUnavailable" else "maxUnavailable"
        assert other not in spec, f"PodDisruptionBudget/{name}.spec has both fields: {spec}"


@pytest.mark.parametrize(("extra", "words"), [
    (["minAvailable=1"], "are both set"),
    (["maxUnavailable=null"], "are both null"),
], ids=["both", "neither"])
@pytest.mark.parametrize("path", sorted(BUDGETS))
def test_both_or_neither_field_is_refused(path: str, extra: list[str], words: str) -> None:
    sets = [f"{path}.podDisruptionBudget.enabled=true", *(f"{path}.podDisruptionBudget.{e}" for e in extra)]
    with pytest.raises(HelmError) as info:
        render_umbrella(sets=sets)
    sentence = fail_sentence(text_of(info.value))
    assert sentence.startswith(f"{path}.podDisruptionBudget."), sentence
    assert words in sentence and not sentence_problems(sentence), sentence
