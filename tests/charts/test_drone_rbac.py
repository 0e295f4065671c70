"""The Kubernetes runner's RBAC: a Role in the build namespace with exactly the verbs drone-runner-kube
uses (secrets create/delete; pods get/create/delete/list/watch/update; pods/log get), bound to the
runner's ServiceAccount; nothing cluster-wide, no wildcards. (The build namespace itself:
test_build_namespace.py.)"""

from __future__ import annotations

from homeci import manifests as mf

from .conftest import NAMESPACE, RELEASE

RUNNER = f"{RELEASE}-drone-runner"
BUILDS = f"{RELEASE}-builds"
EXPECTED_RULES = {
    ("", "secrets"): {"create", "delete"},
    ("", "pods"): {"get", "create", "delete", "list", "watch", "update"},
    ("", "pods/log"): {"get"},
}


def _subjects_runner(binding: mf.Manifest) -> bool:
    return any(
        s.get("kind") == "ServiceAccount" and s.get("name") == RUNNER
        for s in binding.obj.get("subjects") or []
    )


def test_no_cluster_wide_rbac_for_the_runner(umbrella_manifests: list[mf.Manifest]) -> None:
    for b in mf.by_kind(umbrella_manifests, "ClusterRoleBinding"):
        assert not _subjects_runner(b), f"{b.ref} binds ServiceAccount/{RUNNER} cluster-wide"
    for r in mf.by_kind(umbrella_manifests, "ClusterRole"):
        assert "drone" not in r.name, f"{r.ref}: the drone chart must not render ClusterRoles"


def test_role_has_exactly_the_runner_verbs(umbrella_manifests: list[mf.Manifest]) -> None:
    role = mf.get(umbrella_manifests, "Role", RUNNER)
    assert role.namespace == BUILDS, f"{role.ref} metadata.namespace = {role.namespace}, expected {BUILDS}"
    got: dict[tuple[str, str], set[str]] = {}
    for i, rule in enumerate(role.obj["rules"]):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), f"{role.ref} rules[{i}].{field} has a wildcard"
        assert not rule.get("resourceNames"), f"{role.ref} rules[{i}] unexpected resourceNames"
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                got.setdefault((group, res), set()).update(rule["verbs"])
    assert got == EXPECTED_RULES, f"{role.ref} rules grant {got}, expected exactly {EXPECTED_RULES}"


def test_binding_ties_role_to_runner_service_account(umbrella_manifests: list[mf.Manifest]) -> None:
    rb = mf.get(umbrella_manifests, "RoleBinding", RUNNER)
    assert rb.namespace == BUILDS
    assert rb.obj["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RUNNER}
    assert rb.obj["subjects"] == [{"kind": "ServiceAccount", "name": RUNNER, "namespace": NAMESPACE}]
    mf.get(umbrella_manifests, "ServiceAccount", RUNNER)
    dep = mf.get(umbrella_manifests, "Deployment", RUNNER)
    spec = dep.pod_spec() or {}
    assert spec.get("serviceAccountName") == RUNNER, f"{dep.ref} spec.template.spec.serviceAccountName"


def test_no_wildcards_in_any_gogs_or_drone_role(umbrella_manifests: list[mf.Manifest]) -> None:
    for r in mf.by_kind(umbrella_manifests, "Role") + mf.by_kind(umbrella_manifests, "ClusterRole"):
        if not any(x in r.name for x in ("drone", "gogs", "node-trust")):
            continue
        for i, rule in enumerate(r.obj.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{r.ref} rules[{i}].{field} has a wildcard"


def test_runner_uses_the_build_namespace(umbrella_manifests: list[mf.Manifest]) -> None:
    dep = mf.get(umbrella_manifests, "Deployment", RUNNER)
    env = {e["name"]: e.get("value") for _, c in dep.containers() for e in c.get("env") or []}
    assert env["DRONE_NAMESPACE_DEFAULT"] == BUILDS, f"{dep.ref} env DRONE_NAMESPACE_DEFAULT"
    assert env["DRONE_TMATE_ENABLED"] == "false", f"{dep.ref} env DRONE_TMATE_ENABLED must be false"
    for key in (
        "DRONE_RESOURCE_REQUEST_CPU",
        "DRONE_RESOURCE_REQUEST_MEMORY",
        "DRONE_RESOURCE_LIMIT_CPU",
        "DRONE_RESOURCE_LIMIT_MEMORY",
    ):
        assert env.get(key), f"{dep.ref} env {key} (default step resources) is not set"
    mf.get(umbrella_manifests, "Namespace", BUILDS)
