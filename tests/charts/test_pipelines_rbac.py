"""drone-pipelines RBAC is least privilege: per target namespace exactly the deploy step's verbs on
Deployments, bound to that target's ServiceAccount in the build namespace; no wildcard, nothing
cluster-wide. Parametrized over every charts/drone-pipelines/ci/*-values.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homeci import manifests, rendering
from homeci_testing import drone

from .conftest import KUBE_VERSION as KUBE
from .conftest import NAMESPACE, render_pipelines
from .conftest import PIPELINES as CHART
from .conftest import PIPELINES_RELEASE as RELEASE

SCENARIOS = rendering.scenarios(CHART)
# kubectl set image: get + patch; kubectl rollout status: get, then list + watch of that one Deployment.
SET_IMAGE_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]}
]
# pipeline.manifests set (default): kubectl apply -k also reads, creates and patches the app's objects.
APPLY_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "create", "patch"]},
]
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding"}


def render(scenario: Path) -> tuple[dict[str, Any], list[manifests.Manifest]]:
    objs = render_pipelines([scenario])
    return drone.chart_values(scenario, chart=CHART), objs


def build_namespace(values: dict[str, Any]) -> str:
    return values["stack"]["buildNamespace"] or f"{values['stack']['release']}-builds"


@pytest.fixture(params=SCENARIOS, ids=rendering.scenario_name)
def scenario(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_scenarios_exist() -> None:
    assert SCENARIOS, f"{CHART}/ci has no *-values.yaml scenario"


def test_nothing_cluster_wide(scenario: Path) -> None:
    _, objs = render(scenario)
    cluster = [m.ref for m in objs if m.kind in CLUSTER_KINDS]
    assert not cluster, f"{rendering.scenario_name(scenario)}: cluster-wide RBAC rendered: {cluster}"


def test_no_wildcards(scenario: Path) -> None:
    _, objs = render(scenario)
    for role in manifests.by_kind(objs, "Role"):
        for i, rule in enumerate(role.obj.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in (rule.get(field) or []), f"{role.ref} rules[{i}].{field} has a wildcard"


def test_each_target_gets_exactly_the_deploy_verbs(scenario: Path) -> None:
    values, objs = render(scenario)
    targets = [t["namespace"] for t in values["targets"]]
    roles = manifests.by_kind(objs, "Role")
    assert sorted(r.namespace or "" for r in roles) == sorted(targets), (
        f"Roles must exist in the target namespaces only: {[f'{r.namespace}/{r.name}' for r in roles]}"
    )
    expected = APPLY_RULES if values["pipeline"]["manifests"] else SET_IMAGE_RULES
    for role in roles:
        assert role.obj["rules"] == expected, (
            f"Role/{role.name} in {role.namespace} rules: expected {expected}, got {role.obj['rules']}"
        )


def test_bindings_join_target_role_and_build_namespace_serviceaccount(scenario: Path) -> None:
    values, objs = render(scenario)
    build = build_namespace(values)
    accounts = {(m.namespace, m.name): m for m in manifests.by_kind(objs, "ServiceAccount")}
    bindings = manifests.by_kind(objs, "RoleBinding")
    assert len(bindings) == len(values["targets"])
    for target in values["targets"]:
        ns = target["namespace"]
        sa = f"{RELEASE}-deploy-{ns}"
        assert (build, sa) in accounts, f"ServiceAccount/{sa} missing in build namespace {build}"
        assert accounts[(build, sa)].obj.get("automountServiceAccountToken") is True, (
            f"ServiceAccount/{sa}.automountServiceAccountToken: the deploy step's kubectl needs the token"
        )
        binding = next((b for b in bindings if b.namespace == ns), None)
        assert binding is not None, f"no RoleBinding in target namespace {ns}"
        role = next(r for r in manifests.by_kind(objs, "Role") if r.namespace == ns)
        assert binding.obj["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.name,
        }, f"RoleBinding/{binding.name} in {ns} roleRef"
        assert binding.obj["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": build}], (
            f"RoleBinding/{binding.name} in {ns} subjects: only the deployer of {ns}"
        )
    assert len(accounts) == len(values["targets"]), f"unexpected ServiceAccounts: {sorted(accounts)}"


def test_objects_are_labelled(scenario: Path) -> None:
    _, objs = render(scenario)
    for m in objs:
        labels = m.labels
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert labels.get(key), f"{m.ref} metadata.labels.{key} missing"
        assert labels.get("app.kubernetes.io/part-of") == "homeci", f"{m.ref} metadata.labels.part-of"
        assert labels["app.kubernetes.io/instance"] == RELEASE


def test_helm4_renders_the_same_rbac(scenario: Path) -> None:
    """Helm 3 and Helm 4 produce the same RBAC objects (names, namespaces, rules, subjects)."""

    def rbac(major: int) -> list[tuple[str, str | None, str, str]]:
        objs = rendering.render(
            CHART, [scenario], major=major, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE
        )
        kinds = ("ServiceAccount", "Role", "RoleBinding")
        body = ("rules", "subjects", "roleRef", "automountServiceAccountToken")
        return sorted(
            (m.kind, m.namespace, m.name, repr({k: m.obj.get(k) for k in body}))
            for m in objs
            if m.kind in kinds
        )

    assert rbac(4) == rbac(3), f"{rendering.scenario_name(scenario)}: Helm 4 RBAC differs from Helm 3"
