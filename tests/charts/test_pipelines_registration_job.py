"""The registration hook Job: a post-install/post-upgrade hook, restricted pod security, pinned image,
credentials only as files of Secrets (never environment variables), and the settings the script reads.
Parametrized over every charts/drone-pipelines/ci scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from homeci import manifests, rendering
from homeci_testing import drone

from .conftest import NAMESPACE, render_pipelines, secret_source
from .conftest import PIPELINES as CHART
from .conftest import PIPELINES_RELEASE as RELEASE

JOB = f"{RELEASE}-register"


def render(scenario: Path) -> tuple[dict[str, Any], list[manifests.Manifest]]:
    objs = render_pipelines([scenario])
    return drone.chart_values(scenario, chart=CHART), objs


@pytest.fixture(params=rendering.scenarios(CHART), ids=rendering.scenario_name)
def rendered(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[manifests.Manifest]]:
    return render(request.param)


def job_of(rendered: tuple[dict[str, Any], list[manifests.Manifest]]) -> manifests.Manifest:
    values, objs = rendered
    if not values["registration"]["enabled"]:
        assert not manifests.by_kind(objs, "Job"), "registration.enabled=false must not render the Job"
        pytest.skip("registration disabled in this scenario")
    return manifests.get(objs, "Job", JOB)


def test_is_a_post_install_and_upgrade_hook(
    rendered: tuple[dict[str, Any], list[manifests.Manifest]],
) -> None:
    job = job_of(rendered)
    ann = job.annotations
    assert set(ann["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}, f"{job.ref} helm.sh/hook"
    policies = set(ann["helm.sh/hook-delete-policy"].split(","))
    assert "before-hook-creation" in policies and "hook-failed" not in policies, (
        f"{job.ref}: a failed Job must stay for `kubectl logs`"
    )
    assert job.obj["spec"]["backoffLimit"] == 0, f"{job.ref}.spec.backoffLimit: retries live in the script"
    assert job.obj["spec"]["activeDeadlineSeconds"] > 0, f"{job.ref}.spec.activeDeadlineSeconds"


def test_pod_is_restricted(rendered: tuple[dict[str, Any], list[manifests.Manifest]]) -> None:
    """What the aspect modules do not already check for drone-pipelines/* (test_security: enableServiceLinks,
    allowPrivilegeEscalation, readOnlyRootFilesystem, runAsNonRoot; test_images: a pinned image;
    test_resources: requests and limits present): the exact pod-level settings of the Job."""
    job = job_of(rendered)
    spec = job.pod_spec()
    assert spec is not None
    assert spec["serviceAccountName"] == f"{RELEASE}-registration", f"{job.ref}.serviceAccountName"
    assert spec["automountServiceAccountToken"] is False, f"{job.ref}: no automount; one token volume"
    (volume,) = [v for v in spec["volumes"] if "serviceAccountToken" in str(v)]
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token", f"{job.ref} volumes[{volume['name']}]"
    mounts = {m["name"]: m for _, c in job.containers() for m in c["volumeMounts"]}
    assert mounts[volume["name"]]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount", (
        f"{job.ref}: register.py reads the token and CA where the kubelet would put them"
    )
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for path, c in job.containers():
        where = f"{job.ref} {path}"
        sc = c["securityContext"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, f"{where}.securityContext.capabilities"
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) == {"cpu", "memory"}, f"{where}.resources.{kind}"


def test_environment_matches_the_script(rendered: tuple[dict[str, Any], list[manifests.Manifest]]) -> None:
    values, objs = rendered
    job = job_of(rendered)
    ((path, c),) = list(job.containers())
    env = {e["name"]: e for e in c["env"]}
    for name in (
        "HOMECI_DRONE_SERVER",
        "HOMECI_OWNERS",
        "HOMECI_TEMPLATES_DIR",
        "HOMECI_ORG_SECRETS",
        "HOMECI_NAMESPACES",
    ):
        assert name in env, f"{job.ref} {path}.env.{name} missing (register.py reads it)"
    namespaces = json.loads(env["HOMECI_NAMESPACES"]["value"])
    assert set(namespaces) == {t["namespace"] for t in values["targets"]}, f"{job.ref} HOMECI_NAMESPACES"
    for target in values["targets"]:
        level = target.get("podSecurity", "restricted")
        meta = namespaces[target["namespace"]]
        assert meta["labels"] == {"pod-security.kubernetes.io/enforce": level,
                                  "pod-security.kubernetes.io/audit": "restricted",
                                  "pod-security.kubernetes.io/warn": "restricted"}, (
            f"{job.ref} HOMECI_NAMESPACES[{target['namespace']}].labels"
        )
        reason = target.get("podSecurityReason") if level != "restricted" else None
        assert meta["annotations"] == {"homeci.dev/pod-security-reason": reason}, (
            f"{job.ref} HOMECI_NAMESPACES[{target['namespace']}].annotations"
        )
    owners = sorted({o for t in values["targets"] for o in t["owners"]})
    assert env["HOMECI_OWNERS"]["value"].split(",") == owners, f"{job.ref} {path}.env.HOMECI_OWNERS"
    org = json.loads(env["HOMECI_ORG_SECRETS"]["value"])
    assert set(org) == {
        values["pipeline"]["secretNames"]["username"],
        values["pipeline"]["secretNames"]["password"],
    }
    sources = {}
    for var in [*org.values(), "HOMECI_DRONE_TOKEN"]:
        assert var not in env, f"{job.ref} {path}.env.{var}: a secret in the environment (mount it as a file)"
        sources[var] = secret_source(job, c["name"], var)
        assert sources[var], f"{job.ref} {path}: {var} is no file of a Secret in $HOMECI_SECRETS_DIR"
    server = (
        values["drone"]["server"].rstrip("/")
        or f"http://{values['stack']['release']}-drone.{NAMESPACE}.svc:80"
    )
    assert env["HOMECI_DRONE_SERVER"]["value"] == server, f"{job.ref} {path}.env.HOMECI_DRONE_SERVER"
    # Secrets the Job references are either rendered here or the umbrella's (same namespace).
    rendered_secrets = {m.name for m in manifests.by_kind(objs, "Secret") if m.namespace == NAMESPACE}
    umbrella = {f"{values['stack']['release']}-drone-machine", f"{values['stack']['release']}-registry-auth"}
    for var, source in sources.items():
        assert source and source[0] in rendered_secrets | umbrella, f"{job.ref} {path}: {var} from {source}"
    literal = {values["registry"]["auth"]["password"], values["drone"]["token"]["value"]} - {""}
    for e in c["env"]:
        assert e.get("value") not in literal, (
            f"{job.ref} {path}.env.{e['name']}: a credential in the pod spec"
        )


def test_mounts_script_and_registered_templates(
    rendered: tuple[dict[str, Any], list[manifests.Manifest]],
) -> None:
    _, objs = rendered
    job = job_of(rendered)
    spec = job.pod_spec()
    assert spec is not None
    volumes = {v["name"]: v for v in spec["volumes"]}
    script_cm = manifests.get(objs, "ConfigMap", volumes["script"]["configMap"]["name"])
    assert script_cm.obj["data"]["register.py"].strip() == drone.registration_script().read_text().strip(), (
        f"{script_cm.ref}.data[register.py] differs from charts/drone-pipelines/files/register.py"
    )
    templates_cm = manifests.get(objs, "ConfigMap", volumes["templates"]["configMap"]["name"])
    assert set(templates_cm.obj["data"]) == set(drone.template_files()), f"{templates_cm.ref}.data keys"
