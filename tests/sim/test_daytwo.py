"""Day-two chart pieces on a real API server (ci/day-two-values.yaml: the scheduled backup and every
PodDisruptionBudget): `helm install --wait` completes although the backup volume has no consumer but the
binding Job; a same-values upgrade changes nothing (Secrets, ConfigMaps, pod templates, the CronJob's job
template, the binding Job); each budget selects its workload's pods; the backup's ServiceAccount may read
this namespace's Secrets and exec into its pods, and nothing more."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from homeci.helm import Helm
from homeci_testing.clusters import (
    Deployments,
    can,
    configmap_data,
    diff_maps,
    helm_install,
    pod_templates,
    secret_data,
)
from homeci_testing.support import UMBRELLA

DAY_TWO = UMBRELLA / "ci" / "day-two-values.yaml"
SA = "homeci-backup"


def _snapshot(api: Any, namespace: str) -> dict[str, Any]:
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job("homeci-backup", namespace)
    jobs = sorted(j.metadata.name for j in batch.list_namespaced_job(namespace).items
                  if j.metadata.name.startswith("homeci-backup-volume-"))
    return {"secrets": secret_data(api, namespace), "configmaps": configmap_data(api, namespace),
            "templates": pod_templates(api, namespace),
            "cron": api.sanitize_for_serialization(cron.spec.job_template), "jobs": jobs}


def test_day_two_install_and_noop_upgrade(helm: Helm, api: Any, namespace: str,
                                          deployments: Deployments) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace, values_files=[DAY_TWO])
    core = client.CoreV1Api(api)
    pvc = core.read_namespaced_persistent_volume_claim("homeci-backup", namespace)
    assert pvc.status.phase == "Bound", f"PersistentVolumeClaim/homeci-backup is {pvc.status.phase}"
    before = _snapshot(api, namespace)
    assert len(before["jobs"]) == 1, f"binding Jobs: {before['jobs']}"

    helm_install(deployments, helm, api, UMBRELLA, namespace, values_files=[DAY_TWO], upgrade=True)
    after = _snapshot(api, namespace)
    changes = diff_maps("Secret", before["secrets"], after["secrets"])
    changes += diff_maps("ConfigMap", before["configmaps"], after["configmaps"])
    assert not changes, f"{helm} same-values upgrade changed: {'; '.join(changes)}"
    assert after["templates"] == before["templates"], f"{helm}: a same-values upgrade rolled a workload"
    assert after["cron"] == before["cron"], "CronJob/homeci-backup's job template changed"
    assert after["jobs"] == before["jobs"], f"binding Job replaced: {before['jobs']} -> {after['jobs']}"

    policy = client.PolicyV1Api(api)
    apps = client.AppsV1Api(api)
    for pdb in policy.list_namespaced_pod_disruption_budget(namespace).items:
        dep = apps.read_namespaced_deployment(pdb.metadata.name, namespace)
        assert pdb.spec.selector.match_labels == dep.spec.selector.match_labels, pdb.metadata.name
        assert pdb.spec.max_unavailable == 1, f"PodDisruptionBudget/{pdb.metadata.name}: {pdb.spec}"
    names = sorted(p.metadata.name for p in policy.list_namespaced_pod_disruption_budget(namespace).items)
    assert names == ["homeci-drone", "homeci-drone-runner", "homeci-gogs", "homeci-registry",
                     "homeci-traefik"], names


def test_backup_account_reads_secrets_and_execs_here_only(helm3: Helm, api: Any, namespace: str,
                                                         deployments: Deployments) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace, values_files=[DAY_TWO])
    allowed = [("list", "secrets", "", ""), ("list", "pods", "", ""), ("create", "pods", "", "exec"),
               ("list", "deployments", "apps", "")]
    for verb, resource, group, sub in allowed:
        assert can(api, namespace, SA, verb, resource, namespace=namespace, group=group, subresource=sub), (
            f"ServiceAccount {SA} may not {verb} {resource}{'/' + sub if sub else ''} in {namespace}")
    refused = [("delete", "secrets", "", "", namespace), ("create", "secrets", "", "", namespace),
               ("patch", "deployments", "apps", "", namespace), ("create", "pods", "", "", namespace),
               ("list", "secrets", "", "", "kube-system"), ("create", "pods", "", "exec", "kube-system")]
    for verb, resource, group, sub, ns in refused:
        assert not can(api, namespace, SA, verb, resource, namespace=ns, group=group, subresource=sub), (
            f"ServiceAccount {SA} may {verb} {resource}{'/' + sub if sub else ''} in {ns}")
