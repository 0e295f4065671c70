"""Node trust and public names inside the cluster:
* the node-trust DaemonSet (own namespace, Pod Security privileged) mounts exactly its node
  directories: containerd certs.d/<registry host>, and the step CA directory the runner mounts from
  with hostPath delivery (older clusters);
* its Role reads only the CA ConfigMap; the runner's DRONE_RUNNER_VOLUMES names the directory it writes;
* the k3s coredns-custom override sends *.<domain> to the rendered Traefik Service."""

from __future__ import annotations

import re
from typing import Any

from homeci import contract
from homeci import manifests as mf
from homeci_testing import support

from .conftest import NAMESPACE, RELEASE, dig

NT = f"{RELEASE}-node-trust"


def registry_host(values: dict[str, Any]) -> str:
    return contract.host("registry", values)


def test_daemonset_present_iff_enabled(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    enabled = dig(values, "nodeTrust.enabled", True)
    present = [m.ref for m in umbrella_manifests if m.name == NT]
    if not enabled:
        assert not present, f"nodeTrust.enabled=false but rendered {present}"
        return
    ns = mf.get(umbrella_manifests, "Namespace", NT)
    assert ns.labels.get("pod-security.kubernetes.io/enforce") == "privileged", f"{ns.ref} Pod Security level"
    ds = mf.get(umbrella_manifests, "DaemonSet", NT)
    assert ds.namespace == NT, f"{ds.ref} must live in its own namespace {NT}"


def test_daemonset_mounts_exactly_its_node_dirs(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    """containerd's directory for the registry host; the step CA directory only for hostPath delivery
    (every scenario renders for Kubernetes >= 1.36, where auto means the admission policy)."""
    if not dig(values, "nodeTrust.enabled", True):
        return
    ds = mf.get(umbrella_manifests, "DaemonSet", NT)
    host_paths = {v["name"]: v["hostPath"] for v in (ds.pod_spec() or {})["volumes"] if "hostPath" in v}
    certs_dir = dig(values, "nodeTrust.containerdCertsDir", "/etc/containerd/certs.d")
    host_dir = dig(values, "nodeTrust.hostDir", "/var/lib/homeci")
    expected = {f"{certs_dir}/{registry_host(values)}"}
    if dig(values, "drone.runner.stepCA.delivery", "auto") == "hostPath":
        expected.add(f"{host_dir}/{NAMESPACE}.{RELEASE}")
    assert {h["path"] for h in host_paths.values()} == expected, f"{ds.ref} hostPath volumes {host_paths}"
    assert all(h.get("type") == "DirectoryOrCreate" for h in host_paths.values())
    _, c = next(iter(ds.containers()))
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True and not sc.get("privileged"), (
        f"{ds.ref} containers[0].securityContext"
    )


def test_runner_mounts_the_directory_the_daemonset_writes() -> None:
    """hostPath delivery (clusters below 1.36): the runner mounts into every step exactly the node
    directory the DaemonSet keeps."""
    objs = support.render(support.UMBRELLA, sets=("drone.runner.stepCA.delivery=hostPath",))
    runner = mf.get(objs, "Deployment", f"{RELEASE}-drone-runner")
    env = {e["name"]: e.get("value") for _, c in runner.containers() for e in c.get("env") or []}
    # envconfig (the runner's parser) splits map items on every ':' and accepts exactly one:
    # `src:dst:ro` would stop the runner from starting ("invalid map item").
    items = env["DRONE_RUNNER_VOLUMES"].split(",")
    assert all(item.count(":") == 1 for item in items), f"{runner.ref} env DRONE_RUNNER_VOLUMES {items}"
    src, dst = items[0].split(":")
    # A directory: drone-runner-kube mounts every host path with type DirectoryOrCreate.
    assert dst == "/etc/homeci", f"{runner.ref} env DRONE_RUNNER_VOLUMES mounts at {dst}"
    ds = mf.get(objs, "DaemonSet", NT)
    vols = {v["name"]: v for v in (ds.pod_spec() or {})["volumes"]}
    _, c = next(iter(ds.containers()))
    ca_dir_in_pod = {e["name"]: e.get("value") for e in c["env"]}["CA_DIR"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == ca_dir_in_pod)
    assert src == vols[mount["name"]]["hostPath"]["path"], (
        f"{runner.ref} mounts {src} into steps but {ds.ref} writes CA_DIR={ca_dir_in_pod} "
        f"= node {vols[mount['name']]['hostPath']['path']}"
    )


def test_daemonset_reads_only_the_ca_configmap(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    if not dig(values, "nodeTrust.enabled", True):
        return
    role = mf.get(umbrella_manifests, "Role", NT)
    assert role.namespace == NAMESPACE
    assert role.obj["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [f"{RELEASE}-ca"], "verbs": ["get"]}
    ], f"{role.ref} rules"
    ds = mf.get(umbrella_manifests, "DaemonSet", NT)
    env = {e["name"]: e.get("value") for _, c in ds.containers() for e in c["env"]}
    assert env["CA_CONFIGMAP"] == f"{RELEASE}-ca" and env["CA_NAMESPACE"] == NAMESPACE
    assert env["REGISTRY_HOST"] == registry_host(values)
    # The certificate program publishes that ConfigMap in the release namespace.
    hook = mf.get(umbrella_manifests, "Job", f"{RELEASE}-certs-hook")
    writes = {e["name"]: e.get("value") for _, c in hook.containers() for e in c["env"]}
    assert (writes["CA_CONFIGMAP"], writes["NAMESPACE"]) == (env["CA_CONFIGMAP"], env["CA_NAMESPACE"]), (
        f"{ds.ref} reads ConfigMap {env['CA_NAMESPACE']}/{env['CA_CONFIGMAP']}, {hook.ref} writes "
        f"{writes['NAMESPACE']}/{writes['CA_CONFIGMAP']}")


def test_coredns_custom(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    cms = [m for m in mf.by_kind(umbrella_manifests, "ConfigMap") if m.name == "coredns-custom"]
    if not dig(values, "corednsCustom.enabled", False):
        assert not cms, "kube-system/coredns-custom rendered although corednsCustom.enabled is false"
        return
    (cm,) = cms
    assert cm.namespace == "kube-system"
    text = cm.obj["data"]["homeci.override"]
    m = re.search(r"name regex (\S+) (\S+)", text)
    assert m, f"{cm.ref} data[homeci.override] has no `rewrite name regex` rule:\n{text}"
    pattern, target = m.group(1), m.group(2)
    svc_name, svc_ns = target.split(".")[:2]
    svc = mf.get(umbrella_manifests, "Service", svc_name)
    assert svc_ns == NAMESPACE and svc.name == f"{RELEASE}-traefik", f"{cm.ref} rewrites to {target}"
    domain = contract.domain(values)
    for name in (f"{contract.host('git', values)}.", f"{registry_host(values)}.", f"myapp.{domain}."):
        assert re.fullmatch(pattern, name), f"{cm.ref} regex {pattern} does not match {name}"
    assert not re.fullmatch(pattern, "example.com."), f"{cm.ref} regex {pattern} matches foreign names"
