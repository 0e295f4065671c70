"""The build namespace `<release>-builds`, where every pipeline step runs: what a repository's steps may
reach there is decided by the platform, not by the pipeline.

- The clone credential stays in the clone step: the runner is told so (DRONE_NETRC_CLONE_ONLY) and a
  ValidatingAdmissionPolicy refuses a step container that references the DRONE_NETRC_* keys unless it
  runs the clone (or placeholder) image.
- The CA reaches steps read-only: by a MutatingAdmissionPolicy mounting the namespace's CA ConfigMap
  (Kubernetes >= 1.36, namespace `baseline`) or, on older clusters, the node directory (`privileged`).
- A LimitRange and a ResourceQuota bound what steps may take, and a build too large is refused when its
  first step starts; none of them can refuse a pod the runner creates (drone-runner-kube 1.0.0-rc.5
  crashes when a creation is refused, taking every running build with it).

Every umbrella scenario, plus renders for an older cluster and each explicit delivery mode."""

from __future__ import annotations

from typing import Any

import pytest

from homeci import manifests as mf
from homeci_testing import support

from .conftest import NAMESPACE, RELEASE, dig

BUILDS = f"{RELEASE}-builds"
RUNNER = f"{RELEASE}-drone-runner"
NETRC_KEYS = {"DRONE_NETRC_MACHINE", "DRONE_NETRC_USERNAME", "DRONE_NETRC_PASSWORD", "DRONE_NETRC_FILE"}


def _runner_env(objs: list[mf.Manifest]) -> dict[str, str]:
    dep = mf.get(objs, "Deployment", RUNNER)
    return {e["name"]: e.get("value", "") for _, c in dep.containers() for e in c.get("env") or []}


def _policies(objs: list[mf.Manifest], kind: str) -> list[mf.Manifest]:
    return [m for m in mf.by_kind(objs, kind) if m.name.endswith(("-build-ca", "-build-netrc"))]


def _bound_to_builds(objs: list[mf.Manifest], kind: str, policy: str) -> None:
    binding = mf.get(objs, kind, policy)
    spec = binding.obj["spec"]
    assert spec["policyName"] == policy, f"{binding.ref} spec.policyName"
    selector = dig(spec, "matchResources.namespaceSelector.matchLabels")
    assert selector == {"kubernetes.io/metadata.name": BUILDS}, (
        f"{binding.ref} spec.matchResources.namespaceSelector = {selector}: "
        "it must bind the build namespace only")


def _expected_delivery(values: dict[str, Any]) -> str:
    mode = dig(values, "drone.runner.stepCA.delivery", "auto")
    return "admissionPolicy" if mode == "auto" else mode


@pytest.fixture
def runner_on(values: dict[str, Any]) -> None:
    if not dig(values, "drone.enabled", True) or not dig(values, "drone.runner.enabled", True):
        pytest.skip("no Drone runner in this scenario")


@pytest.mark.usefixtures("runner_on")
def test_clone_credential_only_in_the_clone_step(umbrella_manifests: list[mf.Manifest]) -> None:
    env = _runner_env(umbrella_manifests)
    assert env.get("DRONE_NETRC_CLONE_ONLY") == "true", f"Deployment/{RUNNER} env DRONE_NETRC_CLONE_ONLY"
    vaps = _policies(umbrella_manifests, "ValidatingAdmissionPolicy")
    [vap] = [p for p in vaps if p.name.endswith("netrc")]
    spec = vap.obj["spec"]
    rules = spec["matchConstraints"]["resourceRules"]
    # image swaps only: a refused pod creation would crash the runner
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                      "resources": ["pods"]}], f"{vap.ref} spec.matchConstraints.resourceRules = {rules}"
    assert spec["failurePolicy"] == "Fail", f"{vap.ref} spec.failurePolicy must be Fail"
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    for key in NETRC_KEYS:
        assert f"'{key}'" in variables["netrcKeys"], f"{vap.ref} variables.netrcKeys lacks {key}"
    # the images it lets hold the credential are exactly what the runner runs for the clone step
    for var in ("DRONE_IMAGE_CLONE", "DRONE_IMAGE_PLACEHOLDER"):
        image = env[var]
        assert f"'{image}'" in variables["cloneImages"], (
            f"{vap.ref} variables.cloneImages = {variables['cloneImages']} lacks {image} ({var} of {RUNNER})")
    binding = mf.get(umbrella_manifests, "ValidatingAdmissionPolicyBinding", vap.name)
    assert binding.obj["spec"]["validationActions"] == ["Deny"], f"{binding.ref} spec.validationActions"
    _bound_to_builds(umbrella_manifests, "ValidatingAdmissionPolicyBinding", vap.name)


@pytest.mark.usefixtures("runner_on")
def test_step_ca_delivery_and_pod_security(umbrella_manifests: list[mf.Manifest],
                                           values: dict[str, Any]) -> None:
    mode = _expected_delivery(values)
    ns = mf.get(umbrella_manifests, "Namespace", BUILDS)
    level = ns.labels.get("pod-security.kubernetes.io/enforce")
    expected_level = "privileged" if mode == "hostPath" else "baseline"
    assert level == expected_level, (
        f"{ns.ref} pod-security.kubernetes.io/enforce = {level!r}, expected {expected_level!r} for stepCA "
        f"delivery {mode} (restricted rejects every step; only a node path needs privileged)")
    env = _runner_env(umbrella_manifests)
    assert ("DRONE_RUNNER_VOLUMES" in env) == (mode == "hostPath"), (
        f"Deployment/{RUNNER} env DRONE_RUNNER_VOLUMES must be set exactly for hostPath delivery ({mode})")
    maps = [p for p in _policies(umbrella_manifests, "MutatingAdmissionPolicy")]
    assert bool(maps) == (mode == "admissionPolicy"), (
        f"MutatingAdmissionPolicy for the step CA: {[m.ref for m in maps]} with delivery {mode}")
    if maps:
        [policy] = maps
        expression = policy.obj["spec"]["mutations"][0]["applyConfiguration"]["expression"]
        for needle in ('mountPath: "/etc/homeci"', "readOnly: true", f'name: "{RELEASE}-ca"',
                       "object.spec.containers.map("):
            assert needle in expression, f"{policy.ref} mutation does not contain {needle!r}: {expression}"
        assert policy.obj["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"], (
            f"{policy.ref}: volumes can only be added when a pod is created")
        _bound_to_builds(umbrella_manifests, "MutatingAdmissionPolicyBinding", policy.name)
    steps_env = mf.get(umbrella_manifests, "ConfigMap", f"{RUNNER}-env").obj["data"]["steps.env"]
    if mode == "none":
        assert "HOMECI_CA_FILE" not in steps_env, "ConfigMap steps.env points at a CA no step has"
    else:
        for line in ("HOMECI_CA_FILE=/etc/homeci/ca.crt", "GIT_SSL_CAINFO=/etc/homeci/bundle.crt"):
            assert line in steps_env, f"ConfigMap/{RUNNER}-env steps.env lacks {line}"


@pytest.mark.usefixtures("runner_on")
def test_build_namespace_is_bounded(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    limits = dig(values, "drone.runner.buildNamespace.limits", {}) or {}
    lr = mf.get(umbrella_manifests, "LimitRange", BUILDS)
    assert lr.namespace == BUILDS, f"{lr.ref} metadata.namespace"
    [item] = lr.obj["spec"]["limits"]
    assert item["type"] == "Container" and set(item["max"]) == {"cpu", "memory"}, f"{lr.ref} spec.limits[0]"
    if "maxPerContainer" in limits:
        assert item["max"]["memory"] == str(limits["maxPerContainer"]["memory"]), f"{lr.ref} max.memory"
    assert set(item) == {"type", "max", "default"}, (
        f"{lr.ref} spec.limits[0] keys {sorted(item)}: no min or ratio, which could refuse the runner's pods")
    quota = mf.get(umbrella_manifests, "ResourceQuota", BUILDS)
    hard = quota.obj["spec"]["hard"]
    capacity = int(dig(values, "drone.runner.capacity", 2))
    assert hard == {"pods": str(capacity + 2), "services": "0", "persistentvolumeclaims": "0"}, (
        f"{quota.ref} spec.hard {hard}: pods must leave room for every build the runner runs at once "
        "(a refused pod creation crashes it), and nothing else is created there")
    vap = mf.get(umbrella_manifests, "ValidatingAdmissionPolicy", f"{NAMESPACE}-{RELEASE}-build-netrc")
    text = str(vap.obj["spec"]["validations"])
    per_build = dig(values, "drone.runner.buildNamespace.limits.perBuild", {}) or {"containers": 16}
    assert f"size(object.spec.containers) <= {per_build['containers']}" in text, (
        f"{vap.ref}: one build's container count is bounded by perBuild.containers")


@pytest.mark.parametrize(("sets", "kube", "mode"), [
    ((), "1.35.0", "hostPath"),
    ((), "1.36.0", "admissionPolicy"),
    (("drone.runner.stepCA.delivery=hostPath",), None, "hostPath"),
    (("drone.runner.stepCA.delivery=none",), None, "none"),
], ids=["auto-1.35", "auto-1.36", "hostPath", "none"])
def test_delivery_modes(sets: tuple[str, ...], kube: str | None, mode: str) -> None:
    objs = support.render(support.UMBRELLA, sets=sets, kube_version=kube or support.KUBE_VERSION)
    level = mf.get(objs, "Namespace", BUILDS).labels.get("pod-security.kubernetes.io/enforce")
    expected = "privileged" if mode == "hostPath" else "baseline"
    assert level == expected, f"Namespace/{BUILDS} enforce {level}"
    assert bool(_policies(objs, "MutatingAdmissionPolicy")) == (mode == "admissionPolicy"), (
        f"MutatingAdmissionPolicy rendered with delivery {mode}")
    trust = mf.get(objs, "DaemonSet", f"{RELEASE}-node-trust")
    mounts = {m["mountPath"] for _, c in trust.containers() for m in c.get("volumeMounts") or []}
    assert ("/host/ca" in mounts) == (mode == "hostPath"), (
        f"{trust.ref}: the step CA node directory is kept exactly for hostPath delivery "
        f"(mounts {sorted(mounts)})")


def test_admission_policy_refused_on_an_old_cluster() -> None:
    from homeci.helm import HelmError

    with pytest.raises(HelmError, match=r"drone.runner.stepCA.delivery is admissionPolicy .* 1\.36"):
        support.render(support.UMBRELLA, sets=("drone.runner.stepCA.delivery=admissionPolicy",),
                       kube_version="1.35.0")
