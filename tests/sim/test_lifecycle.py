"""Issue 6, 3.3-3.5: rollback (its certificate hook reissues for the old hosts, same CA), uninstall keeps
PVCs and what the certificate program wrote and a reinstall reuses them, `--dry-run=server` renders no key
material and touches nothing, schema-breaking values are rejected up front. The certificate hook runs
through tests/sim/certsjob.py (kwok runs no containers)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from certsjob import install, objects, render, run_hook
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

PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----[A-Za-z0-9+/=\s]{40,}-----END")
CA_SECRET = f"{RELEASE}-ca"
TLS_SECRET = f"{RELEASE}-tls"


def _pvcs(api: Any, namespace: str) -> dict[str, tuple[str, str]]:
    return {p.metadata.name: (p.metadata.uid, p.status.phase)
            for p in client.CoreV1Api(api).list_namespaced_persistent_volume_claim(namespace).items}


def test_rollback_restores_previous_revision(helm: Helm, api: Any, namespace: str,
                                             deployments: Deployments) -> None:
    install(deployments, helm, api, namespace)
    ca = certificate(api, namespace, CA_SECRET)
    extra = ["certificates.extraDnsNames={docs.homeci.localhost}"]
    install(deployments, helm, api, namespace, set_values=extra, upgrade=True)
    assert "docs.homeci.localhost" in dns_names(certificate(api, namespace, TLS_SECRET))

    # helm rollback runs revision 1's pre-rollback hook: the certificate for revision 1's hosts.
    hook = run_hook(api, render(namespace), namespace)
    assert hook.code == 0, hook
    helm.rollback(RELEASE, 1, namespace=namespace, timeout="3m")

    history = helm.history(RELEASE, namespace=namespace)
    last = history[-1]
    assert last["status"] == "deployed" and last["revision"] == 3, f"{helm} history after rollback: {history}"
    tls = certificate(api, namespace, TLS_SECRET)
    names = dns_names(tls)
    assert "git.homeci.localhost" in names and "docs.homeci.localhost" not in names, (
        f"{helm} rollback left Secret/{TLS_SECRET} with {names}")
    tls.verify_directly_issued_by(ca)
    assert certificate(api, namespace, CA_SECRET).serial_number == ca.serial_number, "rollback replaced CA"


def test_uninstall_keeps_pvcs_and_ca_reinstall_reuses(helm3: Helm, api: Any, namespace: str,
                                                       deployments: Deployments) -> None:
    install(deployments, helm3, api, namespace)
    pvcs = _pvcs(api, namespace)
    assert pvcs, "the default install created no PersistentVolumeClaim (registry, Gogs and Drone persist)"
    unbound = {n: phase for n, (_uid, phase) in pvcs.items() if phase != "Bound"}
    assert not unbound, f"PVCs not Bound: {unbound}"
    kept = objects(api, namespace)

    helm3.uninstall(RELEASE, namespace=namespace, timeout="2m")

    after = _pvcs(api, namespace)
    lost = sorted(set(pvcs) - set(after))
    assert not lost, f"uninstall deleted PersistentVolumeClaim(s) {lost}: user data gone"
    left = objects(api, namespace)
    gone = sorted(set(kept) - set(left))
    assert not gone, f"uninstall deleted {gone}: the certificate program's objects are not Helm's"
    assert all(left[ref]["data"] == kept[ref]["data"] for ref in kept), "uninstall changed the CA objects"

    # --dry-run=server against the cluster renders the hook and no key material, and creates nothing.
    out = dry_run_manifest(helm3, RELEASE, namespace, upgrade=False)
    assert not PEM_BLOCK.search(out), "--dry-run=server output carries PEM material"
    assert not [c for c in manifest_objects(out, "ConfigMap") if c["metadata"]["name"] == CA_SECRET], (
        f"--dry-run=server renders ConfigMap/{CA_SECRET}: the certificate program owns it")
    with pytest.raises(HelmError):
        helm3.status(RELEASE, namespace=namespace)

    reuse = run_hook(api, render(namespace), namespace)
    assert reuse.code == 0 and reuse.wrote == [], f"the reinstall's hook rewrote kept objects: {reuse}"
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    assert secret_data(api, namespace)[CA_SECRET] == kept[f"Secret/{namespace}/{CA_SECRET}"]["data"], (
        f"reinstall replaced Secret/{CA_SECRET}")
    again = _pvcs(api, namespace)
    for name, (uid, _phase) in pvcs.items():
        assert again.get(name, ("", ""))[0] == uid, f"reinstall did not reuse PersistentVolumeClaim/{name}"
        assert again[name][1] == "Bound", f"PersistentVolumeClaim/{name} {again[name][1]} after reinstall"


def test_dry_run_server_touches_no_certificate(helm: Helm, api: Any, namespace: str,
                                               deployments: Deployments) -> None:
    install(deployments, helm, api, namespace)
    before = {ref: obj["metadata"]["resourceVersion"] for ref, obj in objects(api, namespace).items()}
    out = dry_run_manifest(helm, RELEASE, namespace, upgrade=True)
    rendered = [c["metadata"]["name"] for c in manifest_objects(out, "Secret")]
    assert CA_SECRET not in rendered and TLS_SECRET not in rendered, (
        f"{helm} --dry-run=server renders the CA or serving Secret")
    after = {ref: obj["metadata"]["resourceVersion"] for ref, obj in objects(api, namespace).items()}
    assert after == before, f"{helm} --dry-run=server changed the certificate objects"
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
