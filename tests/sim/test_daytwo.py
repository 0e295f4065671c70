"""Day-two chart pieces on a real API server (ci/day-two-values.yaml: the scheduled backup and every
PodDisruptionBudget): `helm install --wait` completes although the backup volume has no consumer but the
binding Job; a same-values upgrade changes nothing (Secrets, ConfigMaps, pod templates, the CronJob's job
template, the binding Job); each budget selects its workload's pods; the backup's ServiceAccount may read
this namespace's Secrets and exec into its pods, and nothing more. Downgrades: ConfigMap <release>-versions
records the programs that wrote the data, and a chart with an older Gogs, Drone or registry is refused
before anything changes; an older chart with the same programs goes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from homeci.helm import Helm, HelmError
from homeci_testing.chartrepo import with_older_program
from homeci_testing.clusters import (
    Deployments,
    can,
    configmap_data,
    diff_maps,
    helm_install,
    pod_templates,
    secret_data,
)
from homeci_testing.support import RELEASE, UMBRELLA

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


@pytest.mark.parametrize(("program", "older"), [("gogs", "next-0.14.2"), ("drone", "2.27.0"),
                                                ("registry", "3.0.0")])
def test_a_downgrade_to_an_older_program_is_refused_before_anything_changes(
        helm3: Helm, api: Any, namespace: str, deployments: Deployments, tmp_path: Path, program: str,
        older: str) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    recorded = configmap_data(api, namespace)["homeci-versions"]
    chart_version = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["version"]
    assert recorded["chart"] == chart_version and recorded[program], f"ConfigMap/homeci-versions: {recorded}"
    before = _snapshot_plain(api, namespace)
    revision = helm3.status(RELEASE, namespace=namespace)["version"]

    with pytest.raises(HelmError) as refused:
        helm3.upgrade(RELEASE, with_older_program(UMBRELLA, tmp_path, program, older), namespace=namespace,
                      install=False, timeout="2m")
    message = str(refused.value)
    assert "the downgrade is refused and nothing was changed" in message, message
    assert f"runs {program} {older.removeprefix('next-')}" in message, message
    assert f"last written by {program} {recorded[program]}" in message, message
    assert helm3.status(RELEASE, namespace=namespace)["version"] == revision, "the refusal made a revision"
    assert _snapshot_plain(api, namespace) == before, "the refused downgrade changed objects"


def test_a_downgrade_of_the_chart_alone_goes_through(helm3: Helm, api: Any, namespace: str,
                                                      deployments: Deployments, tmp_path: Path) -> None:
    """Same programs, older chart: nothing the programs keep changes format, so Helm proceeds (what it
    no longer renders it deletes, except what says keep: Secrets, volumes, this record)."""
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    same = yaml.safe_load((UMBRELLA / "charts" / "gogs" / "Chart.yaml").read_text())["appVersion"]
    helm3.upgrade(RELEASE, with_older_program(UMBRELLA, tmp_path, "gogs", same), namespace=namespace,
                  install=False, timeout="2m")
    assert configmap_data(api, namespace)["homeci-versions"]["chart"] == "0.0.9"


def _snapshot_plain(api: Any, namespace: str) -> dict[str, Any]:
    return {"secrets": secret_data(api, namespace), "configmaps": configmap_data(api, namespace),
            "templates": pod_templates(api, namespace)}


def test_an_app_namespace_made_before_is_left_as_it_is(helm3: Helm, api: Any, namespace: str,
                                                        deployments: Deployments) -> None:
    """Upgrading from a release that did not create app namespaces (drone-pipelines asked the operator
    to make them): the chart must not try to import the existing one (Helm would fail the upgrade)."""
    from homeci_testing.clusters import create_namespace, delete_namespace

    apps = f"{namespace}-apps"
    sets = [f"global.appNamespaces[0].name={apps}", "global.appNamespaces[0].create=true"]
    create_namespace(api, apps)
    try:
        helm_install(deployments, helm3, api, UMBRELLA, namespace, set_values=sets)
        labels = client.CoreV1Api(api).read_namespace(apps).metadata.labels or {}
        assert labels.get("app.kubernetes.io/managed-by") != "Helm", f"Namespace/{apps} imported: {labels}"
        helm_install(deployments, helm3, api, UMBRELLA, namespace, upgrade=True, set_values=sets)
    finally:
        delete_namespace(api, apps, wait=False)
