"""Issue 6, 3.3-3.5: rollback, uninstall keeps PVCs and the CA and a reinstall reuses them,
`--dry-run=server` shows the existing CA reused, schema-breaking values are rejected up front."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client

from homeci.helm import Helm, HelmError
from homeci_testing.clusters import (
    Deployments,
    certificate,
    dns_names,
    dry_run_manifest,
    helm_install,
    manifest_objects,
    secret_data,
)
from homeci_testing.support import RELEASE, UMBRELLA

CA_SECRET = "homeci-ca"
TLS_SECRET = "homeci-tls"


def _pvcs(api: Any, namespace: str) -> dict[str, tuple[str, str]]:
    return {p.metadata.name: (p.metadata.uid, p.status.phase)
            for p in client.CoreV1Api(api).list_namespaced_persistent_volume_claim(namespace).items}


def test_rollback_restores_previous_revision(helm: Helm, api: Any, namespace: str,
                                             deployments: Deployments) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace)
    tls1 = certificate(api, namespace, TLS_SECRET)
    helm_install(deployments, helm, api, UMBRELLA, namespace, upgrade=True,
                 set_values=["global.domain=rollback.example.test"])
    assert "git.rollback.example.test" in dns_names(certificate(api, namespace, TLS_SECRET))

    helm.rollback(RELEASE, 1, namespace=namespace, timeout="3m")

    history = helm.history(RELEASE, namespace=namespace)
    last = history[-1]
    assert last["status"] == "deployed" and last["revision"] == 3, f"{helm} history after rollback: {history}"
    names = dns_names(certificate(api, namespace, TLS_SECRET))
    assert "git.homeci.localhost" in names, f"{helm} rollback left Secret/{TLS_SECRET} with {names}"
    assert certificate(api, namespace, TLS_SECRET).serial_number == tls1.serial_number


def test_uninstall_keeps_pvcs_and_ca_reinstall_reuses(helm3: Helm, api: Any, namespace: str,
                                                       deployments: Deployments) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    pvcs = _pvcs(api, namespace)
    assert pvcs, "the default install created no PersistentVolumeClaim (registry, Gogs and Drone persist)"
    unbound = {n: phase for n, (_uid, phase) in pvcs.items() if phase != "Bound"}
    assert not unbound, f"PVCs not Bound: {unbound}"
    ca = secret_data(api, namespace)[CA_SECRET]

    helm3.uninstall(RELEASE, namespace=namespace, timeout="2m")

    after = _pvcs(api, namespace)
    lost = sorted(set(pvcs) - set(after))
    assert not lost, f"uninstall deleted PersistentVolumeClaim(s) {lost}: user data gone"
    kept = secret_data(api, namespace)
    assert CA_SECRET in kept, f"uninstall deleted Secret/{CA_SECRET} (needs helm.sh/resource-policy: keep)"

    # --dry-run=server against the cluster shows the kept CA being reused, and creates nothing.
    out = dry_run_manifest(helm3, RELEASE, namespace, upgrade=False)
    ca_pem = base64.b64decode(ca["tls.crt"]).decode()
    cms = [c for c in manifest_objects(out, "ConfigMap") if c["metadata"]["name"] == "homeci-ca"]
    assert cms, "--dry-run=server output has no ConfigMap/homeci-ca"
    assert cms[0]["data"]["ca.crt"].strip() == ca_pem.strip(), (
        "--dry-run=server: ConfigMap/homeci-ca data[ca.crt] is not the kept CA certificate")
    with pytest.raises(HelmError):
        helm3.status(RELEASE, namespace=namespace)

    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    assert secret_data(api, namespace)[CA_SECRET] == ca, f"reinstall replaced Secret/{CA_SECRET}"
    again = _pvcs(api, namespace)
    for name, (uid, _phase) in pvcs.items():
        assert again.get(name, ("", ""))[0] == uid, f"reinstall did not reuse PersistentVolumeClaim/{name}"
        assert again[name][1] == "Bound", f"PersistentVolumeClaim/{name} {again[name][1]} after reinstall"


def test_dry_run_server_reuses_existing_ca(helm: Helm, api: Any, namespace: str,
                                           deployments: Deployments) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace)
    ca_pem = certificate(api, namespace, CA_SECRET)
    out = dry_run_manifest(helm, RELEASE, namespace, upgrade=True)
    cms = [c for c in manifest_objects(out, "ConfigMap") if c["metadata"]["name"] == "homeci-ca"]
    assert cms, f"{helm} --dry-run=server output has no ConfigMap/homeci-ca"
    from cryptography import x509

    shown = x509.load_pem_x509_certificate(cms[0]["data"]["ca.crt"].encode())
    assert shown.serial_number == ca_pem.serial_number, (
        f"{helm} --dry-run=server would publish a different CA than Secret/{CA_SECRET}")
    assert helm.history(RELEASE, namespace=namespace)[-1]["revision"] == 1, "dry run created a revision"


@pytest.mark.parametrize("bad", [
    "global.tls.mode=bogus",
    "global.domain=",
    "global.unknownKey=1",
])
def test_schema_rejects_before_creating_anything(helm3: Helm, api: Any, namespace: str,
                                                 deployments: Deployments, bad: str) -> None:
    deployments.track(helm3, RELEASE, namespace)
    with pytest.raises(HelmError) as err:
        helm3.install(RELEASE, UMBRELLA, namespace=namespace, set_values=[bad], timeout="1m")
    assert "schema" in str(err.value).lower() or "values don't meet" in str(err.value), (
        f"--set {bad}: rejected, but not by the schema: {err.value}")
    core = client.CoreV1Api(api)
    created = [s.metadata.name for s in core.list_namespaced_secret(namespace).items]
    created += [c.metadata.name for c in core.list_namespaced_config_map(namespace).items
                if c.metadata.name != "kube-root-ca.crt"]
    created += [s.metadata.name for s in core.list_namespaced_service_account(namespace).items
                if s.metadata.name != "default"]
    assert not created, f"--set {bad}: objects created before the rejection: {created}"
    names = [n.metadata.name for n in core.list_namespace().items]
    assert "homeci-builds" not in names, f"--set {bad}: Namespace/homeci-builds created before the rejection"
