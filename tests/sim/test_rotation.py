"""Credential rotation against a real API server (issue 20 item 7), with real `helm upgrade`s of the same
values: these rules need `lookup`, which offline renders do not have.

* The registry's htpasswd line follows Secret <release>-registry-auth: an unchanged Secret keeps it byte
  for byte, a changed password or user name gives a new bcrypt line (checked with bcrypt itself), a
  Secret from before the fingerprint annotation keeps its line and gains the annotation; no restart.
  The registry's rehash hook (its program run as the kubelet would, as the pod's ServiceAccount) lowers
  the line's bcrypt cost to registry.auth.bcryptCost, later upgrades keep the rehashed line, and after a
  password change it lowers the new line again.
* Pods restart only when they must: a Secret read only at start (Gogs' SECRET_KEY, the registry's
  http.secret) rolls its Deployment; the admin password (followed by Gogs itself) and the registry
  password (a file the registry re-reads) roll nothing.

The install followed by a same-values upgrade rolling nothing (the checksums of generated Secrets are equal
on both renders) is tests/sim/test_upgrade.py::test_noop_upgrade_changes_nothing."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import bcrypt
import certsjob
import pytest
from kubernetes import client

from homeci import manifests
from homeci.helm import Helm
from homeci_testing.clusters import Deployments, helm_install, manifest_objects, pod_templates
from homeci_testing.support import UMBRELLA

AUTH = "homeci-registry-auth"
FINGERPRINT = "homeci.dev/htpasswd-of"
REHASH = "homeci-registry-rehash"


def _secret(api: Any, namespace: str, name: str) -> tuple[dict[str, str], dict[str, str]]:
    s = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    data = {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}
    return data, dict(s.metadata.annotations or {})


def _edit(api: Any, namespace: str, name: str, **data: str) -> None:
    """What `kubectl edit secret` does to the given keys."""
    body = {"data": {k.replace("_", "-"): base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    client.CoreV1Api(api).patch_namespaced_secret(name, namespace, body)


def _upgrade(deployments: Deployments, helm: Helm, api: Any, namespace: str, *sets: str) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace, upgrade=True, set_values=list(sets))


def _rolled(before: dict[str, tuple[int, Any]], after: dict[str, tuple[int, Any]]) -> list[str]:
    return sorted(ref for ref in before if ref in after and before[ref][1] != after[ref][1])


def _check_line(data: dict[str, str], annotations: dict[str, str], what: str) -> None:
    user, _, hashed = data["htpasswd"].partition(":")
    assert user == data["username"], (
        f"Secret/{AUTH} htpasswd is for {user!r}, not {data['username']!r} ({what})")
    assert bcrypt.checkpw(data["password"].encode(), hashed.encode()), (
        f"Secret/{AUTH} htpasswd does not match its password ({what})")
    expected = "sha256:" + hashlib.sha256(
        f"{data['htpasswd']}\n{data['username']}:{data['password']}".encode()).hexdigest()
    assert annotations.get(FINGERPRINT) == expected, (
        f"Secret/{AUTH} annotation {FINGERPRINT} is {annotations.get(FINGERPRINT)!r}, expected the "
        f"fingerprint of its line and credentials ({what})")


def test_registry_htpasswd_follows_the_secret(helm: Helm, api: Any, namespace: str,
                                              deployments: Deployments) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace)
    first, notes = _secret(api, namespace, AUTH)
    _check_line(first, notes, "install")
    templates = pod_templates(api, namespace)

    _upgrade(deployments, helm, api, namespace)
    assert _secret(api, namespace, AUTH) == (first, notes), f"Secret/{AUTH} changed on a same-values upgrade"

    _edit(api, namespace, AUTH, password="rotated-registry-password")
    _upgrade(deployments, helm, api, namespace)
    rotated, notes = _secret(api, namespace, AUTH)
    assert rotated["password"] == "rotated-registry-password", (
        f"Secret/{AUTH}: the upgrade reverted the password")
    assert rotated["htpasswd"] != first["htpasswd"], f"Secret/{AUTH}: htpasswd kept for a changed password"
    _check_line(rotated, notes, "changed password")
    assert not _rolled(templates, pod_templates(api, namespace)), (
        f"a registry password change rolled {_rolled(templates, pod_templates(api, namespace))}: the "
        "registry re-reads its htpasswd file")

    _upgrade(deployments, helm, api, namespace)
    assert _secret(api, namespace, AUTH) == (rotated, notes), f"Secret/{AUTH} churned after the rotation"

    _upgrade(deployments, helm, api, namespace, "registry.auth.username=pusher")
    renamed, notes = _secret(api, namespace, AUTH)
    assert renamed["username"] == "pusher", f"Secret/{AUTH} username is {renamed['username']!r}"
    assert renamed["htpasswd"].startswith("pusher:"), f"Secret/{AUTH} htpasswd is not for pusher"
    _check_line(renamed, notes, "changed user name")

    # A Secret made before the annotation existed: its line is kept byte for byte, the annotation added.
    client.CoreV1Api(api).patch_namespaced_secret(
        AUTH, namespace, {"metadata": {"annotations": {FINGERPRINT: None}}})
    assert FINGERPRINT not in _secret(api, namespace, AUTH)[1]
    _upgrade(deployments, helm, api, namespace, "registry.auth.username=pusher")
    legacy, notes = _secret(api, namespace, AUTH)
    assert legacy == renamed, f"Secret/{AUTH} without the annotation did not keep its data"
    _check_line(legacy, notes, "legacy Secret")


def _rehash(api: Any, namespace: str) -> certsjob.Run:
    """The run of the registry's rehash Job (install) or hook (upgrade) (kwok would only mark it done); its
    ServiceAccount, Role, RoleBinding and script are the release's."""
    objects = certsjob.render(namespace)
    job = manifests.get(objects, "Job", REHASH)
    script = manifests.get(objects, "ConfigMap", REHASH).obj["data"]["htpasswd.py"]
    return certsjob.play_hook(api, [job], namespace, job, script)


def _cost(data: dict[str, str]) -> int:
    return int(data["htpasswd"].split("$")[2])


def test_the_rehash_hook_lowers_the_bcrypt_cost_for_good(helm3: Helm, api: Any, namespace: str,
                                                         deployments: Deployments) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    first, _ = _secret(api, namespace, AUTH)
    assert _cost(first) == 10, f"Secret/{AUTH}: Helm's htpasswd hashes at cost 10, found {first['htpasswd']}"
    templates = pod_templates(api, namespace)

    run = _rehash(api, namespace)
    assert run.code == 0 and "rehashed: bcrypt cost 10 -> 5" in str(run), f"rehash hook: {run}"
    low, notes = _secret(api, namespace, AUTH)
    assert _cost(low) == 5 and {k: low[k] for k in ("username", "password")} == {
        k: first[k] for k in ("username", "password")}, f"Secret/{AUTH}: only the line may change"
    _check_line(low, notes, "rehashed")

    _upgrade(deployments, helm3, api, namespace)
    assert _secret(api, namespace, AUTH) == (low, notes), (
        f"Secret/{AUTH}: the upgrade replaced the rehashed line")
    run = _rehash(api, namespace)
    assert run.code == 0 and "unchanged: bcrypt cost 5" in str(run), f"second rehash: {run}"

    _edit(api, namespace, AUTH, password="rotated-after-rehash")
    _upgrade(deployments, helm3, api, namespace)
    rotated, notes = _secret(api, namespace, AUTH)
    _check_line(rotated, notes, "changed password")
    assert _cost(rotated) == 10, f"Secret/{AUTH}: the upgrade's new line {rotated['htpasswd']}"
    assert _rehash(api, namespace).code == 0
    again, notes = _secret(api, namespace, AUTH)
    assert _cost(again) == 5 and again["password"] == "rotated-after-rehash", again["htpasswd"]
    _check_line(again, notes, "rehashed after the rotation")
    rolled = _rolled(templates, pod_templates(api, namespace))
    assert not rolled, f"rehashing rolled {rolled}: the registry re-reads the file"


def test_only_start_time_secrets_roll_their_workloads(helm3: Helm, api: Any, namespace: str,
                                                      deployments: Deployments) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    templates = pod_templates(api, namespace)

    _edit(api, namespace, "homeci-admin", password="a-new-admin-password")
    _upgrade(deployments, helm3, api, namespace)
    admin, _ = _secret(api, namespace, "homeci-admin")
    assert admin["password"] == "a-new-admin-password", "the upgrade reverted the admin password"
    now = pod_templates(api, namespace)
    assert not _rolled(templates, now), (
        f"an admin password change rolled {_rolled(templates, now)}: Gogs follows the Secret itself")

    _edit(api, namespace, "homeci-gogs", secret_key="a-new-gogs-secret-key")
    _upgrade(deployments, helm3, api, namespace)
    after = pod_templates(api, namespace)
    assert _rolled(now, after) == ["Deployment/homeci-gogs"], (
        f"a new Gogs SECRET_KEY rolled {_rolled(now, after)}, expected Deployment/homeci-gogs only")
    assert _secret(api, namespace, "homeci-gogs")[0]["secret-key"] == "a-new-gogs-secret-key"

    _edit(api, namespace, "homeci-registry-config", http_secret="a-new-http-secret")
    _upgrade(deployments, helm3, api, namespace)
    last = pod_templates(api, namespace)
    assert _rolled(after, last) == ["Deployment/homeci-registry"], (
        f"a new registry http.secret rolled {_rolled(after, last)}, expected Deployment/homeci-registry only")
    config, _ = _secret(api, namespace, "homeci-registry-config")
    assert "a-new-http-secret" in config["config.yml"], "config.yml did not take the edited http-secret"

    _upgrade(deployments, helm3, api, namespace)
    rolled = _rolled(last, pod_templates(api, namespace))
    assert not rolled, f"a same-values upgrade after the rotations rolled {rolled}"


def test_drone_rolls_for_its_start_time_secrets(helm3: Helm, api: Any, namespace: str,
                                                deployments: Deployments) -> None:
    """Drone's server and runner read their Secrets from the environment: a new RPC secret must roll both."""
    manifest = helm_install(deployments, helm3, api, UMBRELLA, namespace)
    server = [d for d in manifest_objects(manifest, "Deployment") if d["metadata"]["name"] == "homeci-drone"]
    annotations = server[0]["spec"]["template"]["metadata"].get("annotations") or {} if server else {}
    if "checksum/secrets" not in annotations:
        pytest.skip("the drone chart does not carry checksum/secrets yet: its templates need "
                    "homeci-lib.secretsChecksum (see charts/homeci-umbrella/README.md, Rotating credentials)")
    before = pod_templates(api, namespace)
    _edit(api, namespace, "homeci-drone", rpc_secret="a-new-rpc-secret-of-32-characters")
    _upgrade(deployments, helm3, api, namespace)
    after = pod_templates(api, namespace)
    assert _rolled(before, after) == ["Deployment/homeci-drone", "Deployment/homeci-drone-runner"], (
        f"a new Drone RPC secret rolled {_rolled(before, after)}")
    _upgrade(deployments, helm3, api, namespace)
    rolled = _rolled(after, pod_templates(api, namespace))
    assert not rolled, f"a same-values upgrade after the rotation rolled {rolled}"
