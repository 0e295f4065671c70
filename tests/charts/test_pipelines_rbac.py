"""drone-pipelines RBAC is least privilege: one deployer ServiceAccount per owner in the build namespace,
bound in exactly the targets that list that owner to a Role with the deploy step's verbs; no wildcard;
the only cluster-wide grant is the registration Job's get/patch of exactly the target namespaces.
Parametrized over every charts/drone-pipelines/ci/*-values.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homeci import contract, manifests, rendering
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
# pipeline.manifests set (default): kubectl apply (the rendered manifests) also reads, creates and
# patches the app's objects.
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


def test_only_the_namespace_labeller_is_cluster_wide(scenario: Path) -> None:
    """The registration Job labels the target namespaces (Pod Security): a ClusterRole, because
    namespaces are cluster-scoped, limited by resourceNames to exactly the targets, get and patch."""
    values, objs = render(scenario)
    cluster = {m.ref: m for m in objs if m.kind in CLUSTER_KINDS}
    if not values["registration"]["enabled"]:
        assert not cluster, (
            f"{rendering.scenario_name(scenario)}: cluster-wide RBAC without the Job: {sorted(cluster)}"
        )
        return
    name = f"{RELEASE}-namespace-labels"
    assert sorted(cluster) == [f"ClusterRole/{name}", f"ClusterRoleBinding/{name}"], sorted(cluster)
    targets = sorted(t["namespace"] for t in values["targets"])
    assert cluster[f"ClusterRole/{name}"].obj["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch"], "resourceNames": targets}
    ], f"ClusterRole/{name}.rules: get/patch of the target namespaces {targets} only"
    binding = cluster[f"ClusterRoleBinding/{name}"].obj
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-registration",
                                    "namespace": NAMESPACE}], f"ClusterRoleBinding/{name}.subjects"


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


def test_one_deployer_per_owner_bound_only_where_it_is_listed(scenario: Path) -> None:
    values, objs = render(scenario)
    build = build_namespace(values)
    accounts = {(m.namespace, m.name): m for m in manifests.by_kind(objs, "ServiceAccount")
                if m.labels.get("app.kubernetes.io/component") == "deployer"}
    owners = {o for t in values["targets"] for o in t["owners"]}
    expected = {(build, contract.deployer_account(o, RELEASE)) for o in owners}
    assert set(accounts) == expected, f"deployer ServiceAccounts: {sorted(accounts)}, want {sorted(expected)}"
    for owner in owners:
        sa = accounts[(build, contract.deployer_account(owner, RELEASE))]
        assert sa.obj.get("automountServiceAccountToken") is True, (
            f"{sa.ref}.automountServiceAccountToken: the deploy step's kubectl needs the token"
        )
        assert sa.annotations.get("homeci.dev/owner") == owner, f"{sa.ref} annotation homeci.dev/owner"
    bindings = manifests.by_kind(objs, "RoleBinding")
    assert len(bindings) == len(values["targets"])
    for target in values["targets"]:
        ns = target["namespace"]
        binding = next((b for b in bindings if b.namespace == ns), None)
        assert binding is not None, f"no RoleBinding in target namespace {ns}"
        role = next(r for r in manifests.by_kind(objs, "Role") if r.namespace == ns)
        assert binding.obj["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.name,
        }, f"RoleBinding/{binding.name} in {ns} roleRef"
        want = sorted({contract.deployer_account(o, RELEASE) for o in target["owners"]})
        assert binding.obj["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": build}
                                           for sa in want], (
            f"RoleBinding/{binding.name} in {ns} subjects: exactly the deployers of {target['owners']}"
        )


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
        kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        body = ("rules", "subjects", "roleRef", "automountServiceAccountToken")
        return sorted(
            (m.kind, m.namespace, m.name, repr({k: m.obj.get(k) for k in body}))
            for m in objs
            if m.kind in kinds
        )

    assert rbac(4) == rbac(3), f"{rendering.scenario_name(scenario)}: Helm 4 RBAC differs from Helm 3"
