"""drone-pipelines' ValidatingAdmissionPolicies as rendered: which requests each one sees (step pods of
the build namespace; requests of the deployer ServiceAccounts) and the facts written into its CEL
(owner -> deployer, the stack's hosts, each target's host labels, the platform's Secrets) agree with the
values. What the CEL does with them is proven against a real kube-apiserver in tests/sim. Parametrized
over every charts/drone-pipelines/ci/*-values.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from homeci import contract, manifests, rendering
from homeci_testing import drone

from .conftest import PIPELINES as CHART
from .conftest import PIPELINES_RELEASE as RELEASE
from .conftest import render_pipelines

SCENARIOS = rendering.scenarios(CHART)
POLICIES = ("step-pods", "deployer-ingresses", "deployer-workloads", "deployer-services")
# Every kind that carries a pod spec; the workloads policy must see all of them, whatever the Role allows.
POD_KINDS = {("", "pods"), ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
             ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs")}


Rendered = tuple[str, dict[str, Any], list[manifests.Manifest]]  # scenario name, values, objects


@pytest.fixture(params=SCENARIOS, ids=rendering.scenario_name)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    path: Path = request.param
    return rendering.scenario_name(path), drone.chart_values(path, chart=CHART), render_pipelines([path])


def _policy(objs: list[manifests.Manifest], short: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"{RELEASE}-{short}"
    policy = manifests.get(objs, "ValidatingAdmissionPolicy", name)
    binding = manifests.get(objs, "ValidatingAdmissionPolicyBinding", name)
    return policy.obj["spec"], binding.obj["spec"]


def _variable(spec: dict[str, Any], name: str) -> Any:
    """A variable whose CEL is a JSON literal (lists, maps of strings), decoded."""
    expr = next(v["expression"] for v in spec["variables"] if v["name"] == name)
    return json.loads(expr)


def _deployer_users(values: dict[str, Any]) -> list[str]:
    build = values["stack"]["buildNamespace"] or f"{values['stack']['release']}-builds"
    owners = {o for t in values["targets"] for o in t["owners"]}
    return sorted(f"system:serviceaccount:{build}:{contract.deployer_account(o, RELEASE)}" for o in owners)


def test_every_policy_is_bound_to_deny(rendered: Rendered) -> None:
    scenario, _, objs = rendered
    for short in POLICIES:
        spec, binding = _policy(objs, short)
        where = f"{scenario}: ValidatingAdmissionPolicy/{RELEASE}-{short}"
        assert spec["failurePolicy"] == "Fail", f"{where}.spec.failurePolicy: an error must refuse, not admit"
        assert binding["policyName"] == f"{RELEASE}-{short}", f"{where}: binding names another policy"
        assert binding["validationActions"] == ["Deny"], f"{where}: binding.validationActions"
        for i, v in enumerate(spec["validations"]):
            assert v["messageExpression"].lstrip().startswith("'homeci: "), (
                f"{where}.spec.validations[{i}].messageExpression must be one line starting with homeci:"
            )
            assert v.get("reason") == "Forbidden", f"{where}.spec.validations[{i}].reason"


def test_step_pods_may_use_only_their_owners_deployer(rendered: Rendered) -> None:
    scenario, values, objs = rendered
    spec, binding = _policy(objs, "step-pods")
    where = f"{scenario}: ValidatingAdmissionPolicy/{RELEASE}-step-pods"
    build = values["stack"]["buildNamespace"] or f"{values['stack']['release']}-builds"
    assert binding["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": build}}, f"{where}: binding must select {build}"
    rules = spec["matchConstraints"]["resourceRules"]
    # UPDATE only: the runner creates every pod with idle placeholders (nothing runs before an image swap)
    # and drone-runner-kube 1.0.0-rc.5 crashes when a pod creation is refused
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                      "resources": ["pods"]}], f"{where}.spec.matchConstraints"
    assert "matchConditions" not in spec, f"{where}: every pod of the build namespace, whoever creates it"
    owners = {o for t in values["targets"] for o in t["owners"]}
    assert _variable(spec, "deployers") == {contract.owner_label(o): contract.deployer_account(o, RELEASE)
                                            for o in owners}, f"{where}: variables.deployers"
    owner = next(v["expression"] for v in spec["variables"] if v["name"] == "owner")
    assert "io.drone.repo.namespace" in owner, f"{where}: the owner must come from the runner's label"


def test_deployer_policies_see_exactly_the_deployers(rendered: Rendered) -> None:
    scenario, values, objs = rendered
    users = _deployer_users(values)
    for short in POLICIES[1:]:
        spec, binding = _policy(objs, short)
        (cond,) = spec["matchConditions"]
        prefix = "request.userInfo.username in "
        assert cond["expression"].startswith(prefix), f"{scenario}: {short} matchConditions"
        assert json.loads(cond["expression"].removeprefix(prefix)) == users, (
            f"{scenario}: ValidatingAdmissionPolicy/{RELEASE}-{short} must apply to the deployers {users}"
        )
        assert "matchResources" not in binding, f"{scenario}: {short} binding: every namespace"


def test_ingress_policy_knows_the_hosts(rendered: Rendered) -> None:
    scenario, values, objs = rendered
    spec, _ = _policy(objs, "deployer-ingresses")
    where = f"{scenario}: ValidatingAdmissionPolicy/{RELEASE}-deployer-ingresses"
    domain = values["stack"]["domain"]
    assert sorted(_variable(spec, "stackHosts")) == sorted(
        f"{label}.{domain}" for label in values["stack"]["hosts"].values()), f"{where}: variables.stackHosts"
    listed = {t["namespace"]: t["hosts"] for t in values["targets"] if "hosts" in t}
    assert _variable(spec, "allowed") == listed, f"{where}: variables.allowed"
    assert _variable(spec, "taken") == sorted({h for hosts in listed.values() for h in hosts}), (
        f"{where}: variables.taken"
    )
    text = json.dumps(spec["validations"])
    assert f"object.spec.ingressClassName == '{values['stack']['ingressClass']}'" in text, (
        f"{where}: the class must be stack.ingressClass"
    )
    assert domain.replace(".", "[.]") + "$" in text, f"{where}: hosts must end in the stack domain"


def test_workload_policy_covers_every_pod_template(rendered: Rendered) -> None:
    scenario, values, objs = rendered
    spec, _ = _policy(objs, "deployer-workloads")
    where = f"{scenario}: ValidatingAdmissionPolicy/{RELEASE}-deployer-workloads"
    seen = {(g, r) for rule in spec["matchConstraints"]["resourceRules"] for g in rule["apiGroups"]
            for r in rule["resources"] if set(rule["operations"]) == {"CREATE", "UPDATE"}}
    assert seen == POD_KINDS, f"{where}: CREATE/UPDATE of {sorted(POD_KINDS - seen)} not checked"
    assert _variable(spec, "platformSecrets") == [values["registry"]["pullSecretName"]], (
        f"{where}: variables.platformSecrets"
    )


def test_deployer_role_grants_nothing_the_policies_do_not_see(rendered: Rendered) -> None:
    """Keep the Role minimal: every kind a deployer may write is either checked by a policy or holds
    nothing that reaches beyond the app (ConfigMaps)."""
    scenario, _, objs = rendered
    checked = {(g, r) for short in POLICIES[1:] for rule in _policy(objs, short)[0]["matchConstraints"][
        "resourceRules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for role in manifests.by_kind(objs, "Role"):
        for rule in role.obj["rules"]:
            writes = set(rule["verbs"]) & {"create", "patch", "update"}
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    if writes and resource != "configmaps":
                        assert (group, resource) in checked, (
                            f"{scenario}: Role/{role.name} in {role.namespace} lets deployers write "
                            f"{group or 'core'}/{resource}, which no deployer policy checks"
                        )


def test_no_policy_without_targets() -> None:
    objs = rendering.render(CHART, [], release=RELEASE)
    assert not [m.ref for m in objs if m.kind.startswith("ValidatingAdmissionPolicy")]
