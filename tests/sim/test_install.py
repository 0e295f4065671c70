"""Issue 6, 3.1: the umbrella installs with its defaults under Helm 3 and Helm 4 into a namespace
where Pod Security `restricted` is enforced; workloads become available, hook Jobs complete, and the
build and node-trust namespaces carry the levels the design gives them."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from homeci.cluster.sim import SimCluster
from homeci.helm import Helm
from homeci.manifests import parse
from homeci_testing.clusters import Deployments, helm_install, namespace_labels, unready_workloads
from homeci_testing.support import UMBRELLA

ENFORCE = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")


def test_default_install_is_available(helm: Helm, api: Any, namespace: str, deployments: Deployments,
                                      sim_cluster: SimCluster) -> None:
    manifest = helm_install(deployments, helm, api, UMBRELLA, namespace)
    objects = parse(manifest)
    kinds = {m.kind for m in objects}
    assert "Deployment" in kinds or "StatefulSet" in kinds, f"{helm}: umbrella rendered no workload"

    apps = client.AppsV1Api(api)
    problems = unready_workloads(apps, namespace)
    assert not problems, f"{helm} --wait returned but: {'; '.join(problems)}"
    for m in objects:
        if m.kind in ("Deployment", "StatefulSet"):
            assert m.namespace in (None, namespace), f"{m.ref} rendered into namespace {m.namespace}"

    # Every pod that exists was admitted under `restricted` (a rejected one never exists, so also
    # check no controller reported FailedCreate).
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    failed = [f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}" for e in events
              if e.reason == "FailedCreate"]
    assert not failed, f"{helm}: pods rejected in restricted namespace {namespace}: {failed[:3]}"

    # Hook Jobs ran to completion (Helm records each hook's last run).
    status = helm.status("homeci", namespace=namespace)
    for hook in status.get("hooks") or []:
        if hook.get("kind") == "Job":
            phase = (hook.get("last_run") or {}).get("phase")
            assert phase == "Succeeded", f"{helm}: hook Job/{hook.get('name')} last run phase {phase!r}"


def test_build_and_node_trust_namespaces(helm3: Helm, api: Any, namespace: str,
                                         deployments: Deployments) -> None:
    manifest = helm_install(deployments, helm3, api, UMBRELLA, namespace)
    objects = parse(manifest)
    assert namespace_labels(api, namespace)[ENFORCE] == "restricted"

    build_ns = "homeci-builds"
    rendered = {m.name: m for m in objects if m.kind == "Namespace"}
    assert build_ns in rendered, (
        f"umbrella did not render Namespace/{build_ns} (the runner's build namespace; contract: "
        f"<release>-builds); rendered namespaces: {sorted(rendered) or 'none'}")
    build_level = namespace_labels(api, build_ns).get(ENFORCE)
    assert build_level in LEVELS, f"Namespace/{build_ns} has no valid {ENFORCE} label ({build_level!r})"
    runner_env = {
        e.get("name"): e.get("value", "")
        for m in objects if m.kind == "Deployment" and m.name == "homeci-drone-runner"
        for _path, c in m.containers() for e in c.get("env") or []
    }
    if runner_env.get("DRONE_RUNNER_VOLUMES"):
        # Design: a node path (hostPath) in every step needs the `privileged` level.
        assert build_level == "privileged", (
            f"Namespace/{build_ns} enforce={build_level} but the runner mounts node paths into steps "
            f"(DRONE_RUNNER_VOLUMES={runner_env['DRONE_RUNNER_VOLUMES']}): hostPath needs privileged")
    else:
        assert build_level in ("baseline", "restricted"), (
            f"Namespace/{build_ns} enforce={build_level}: without node-path volumes the build namespace "
            "must not be privileged")

    # Node trust (containerd hosts.toml) is a DaemonSet writing a node path: never in the restricted
    # release namespace; where it runs, that namespace is labelled privileged.
    for m in objects:
        if m.kind != "DaemonSet":
            continue
        ds_ns = m.namespace or namespace
        assert ds_ns != namespace, f"{m.ref} runs in the restricted release namespace {namespace}"
        assert namespace_labels(api, ds_ns).get(ENFORCE) == "privileged", (
            f"{m.ref}: namespace {ds_ns} must carry {ENFORCE}=privileged (it mounts node paths)")
