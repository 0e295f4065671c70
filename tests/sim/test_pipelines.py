"""Issue 6, 3.6: drone-pipelines installs for a target namespace next to the umbrella, and
SubjectAccessReviews show the deployer (one per owner) and runner identities can do exactly what their
steps need and are denied the rest. The admission policies are tried in test_pipeline_policies.py."""

from __future__ import annotations

import uuid
from typing import Any

from certsjob import install

from homeci.helm import Helm
from homeci.manifests import parse
from homeci_testing.clusters import Deployments, can, create_namespace, helm_install
from homeci_testing.support import PIPELINES

BUILD_NS = "homeci-builds"


def _check(api: Any, sa_ns: str, sa: str, rules: list[tuple[bool, str, str, str | None, str, str]]) -> None:
    wrong = []
    for expected, verb, resource, ns, group, sub in rules:
        got = can(api, sa_ns, sa, verb, resource, namespace=ns, group=group, subresource=sub)
        if got != expected:
            res = f"{resource}/{sub}" if sub else resource
            where = f"in {ns}" if ns else "cluster-wide"
            wrong.append(f"{'denied' if expected else 'ALLOWED'}: {verb} {group or 'core'}/{res} {where}")
    assert not wrong, f"ServiceAccount {sa_ns}/{sa}: " + "; ".join(wrong)


def test_pipelines_rbac_is_exact(helm3: Helm, api: Any, namespace: str, deployments: Deployments) -> None:
    # The umbrella with its certificate hook run (drone-pipelines reads ConfigMap <release>-ca at install).
    umbrella = parse(install(deployments, helm3, api, namespace))
    target = f"apps-{uuid.uuid4().hex[:5]}"
    create_namespace(api, target)
    deployments.namespaces.add(target)
    other = f"other-{uuid.uuid4().hex[:5]}"
    create_namespace(api, other)
    deployments.namespaces.add(other)

    manifest = parse(helm_install(
        deployments, helm3, api, PIPELINES, namespace, release="homeci-pipelines",
        set_values=["stack.release=homeci", f"targets[0].namespace={target}", "targets[0].owners[0]=homeci"],
    ))

    deployers = [m for m in manifest if m.kind == "ServiceAccount"
                 and m.annotations.get("homeci.dev/owner") == "homeci"]
    assert len(deployers) == 1, (f"drone-pipelines: expected one deployer ServiceAccount annotated "
                                 f"homeci.dev/owner=homeci, found {[m.ref for m in deployers]}")
    assert deployers[0].annotations.get("homeci.dev/deploys-to") == target, f"{deployers[0].ref} deploys-to"
    sa_ns = deployers[0].namespace or namespace
    sa = deployers[0].name
    # The deploy step: `kubectl apply` of the rendered manifests (get/create/patch of the app's objects),
    # `kubectl set image` + `kubectl rollout status` on Deployments of the target; nothing else.
    _check(api, sa_ns, sa, [
        (True, "get", "deployments", target, "apps", ""),
        (True, "patch", "deployments", target, "apps", ""),
        (True, "watch", "deployments", target, "apps", ""),
        (True, "create", "deployments", target, "apps", ""),
        (True, "create", "services", target, "", ""),
        (True, "patch", "ingresses", target, "networking.k8s.io", ""),
        (False, "delete", "services", target, "", ""),
        (False, "create", "roles", target, "rbac.authorization.k8s.io", ""),
        (False, "create", "deployments", other, "apps", ""),
        (False, "delete", "deployments", target, "apps", ""),
        (False, "create", "pods", target, "", ""),
        (False, "get", "secrets", target, "", ""),
        (False, "list", "secrets", target, "", ""),
        (False, "patch", "deployments", other, "apps", ""),
        (False, "patch", "deployments", namespace, "apps", ""),
        (False, "get", "secrets", namespace, "", ""),
        (False, "create", "pods", BUILD_NS, "", ""),
        (False, "list", "nodes", None, "", ""),
        (False, "create", "namespaces", None, "", ""),
        (False, "create", "clusterrolebindings", None, "rbac.authorization.k8s.io", ""),
    ])

    runners = [m for m in umbrella if m.kind == "Deployment" and m.name == "homeci-drone-runner"]
    assert runners, "umbrella rendered no Deployment/homeci-drone-runner (contract: <release>-drone-runner)"
    spec = runners[0].pod_spec() or {}
    runner_sa = spec.get("serviceAccountName") or "default"
    # The Kubernetes runner: step pods and their per-build Secret in the build namespace only.
    _check(api, namespace, runner_sa, [
        (True, "create", "pods", BUILD_NS, "", ""),
        (True, "delete", "pods", BUILD_NS, "", ""),
        (True, "watch", "pods", BUILD_NS, "", ""),
        (True, "update", "pods", BUILD_NS, "", ""),
        (True, "get", "pods", BUILD_NS, "", "log"),
        (True, "create", "secrets", BUILD_NS, "", ""),
        (True, "delete", "secrets", BUILD_NS, "", ""),
        (False, "list", "secrets", BUILD_NS, "", ""),
        (False, "get", "secrets", namespace, "", ""),
        (False, "create", "pods", namespace, "", ""),
        (False, "create", "pods", target, "", ""),
        (False, "patch", "deployments", target, "apps", ""),
        (False, "list", "nodes", None, "", ""),
        (False, "create", "namespaces", None, "", ""),
    ])
