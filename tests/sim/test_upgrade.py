"""Issue 6, 3.2: an upgrade with the same values changes nothing (no Secret/ConfigMap data, CA and
serving certificate unchanged, no pod template change so no rollout; the certificate hook and the
publishing run write nothing); a new domain is refused by the name-constrained CA in one sentence until
the CA is rotated, and then the serving certificate is issued for the new names by the new CA.

The certificate hook and CronJob run through tests/sim/certsjob.py (kwok runs no containers)."""

from __future__ import annotations

from typing import Any

from certsjob import install, render, run_cronjob, run_hook
from cryptography import x509
from kubernetes import client

from homeci.helm import Helm
from homeci_testing.clusters import (
    Deployments,
    certificate,
    configmap_data,
    diff_maps,
    dns_names,
    helm_install,
    pod_templates,
    secret_data,
)
from homeci_testing.support import RELEASE, UMBRELLA

CA_SECRET = f"{RELEASE}-ca"
TLS_SECRET = f"{RELEASE}-tls"
BUILDS = f"{RELEASE}-builds"


def test_noop_upgrade_changes_nothing(helm: Helm, api: Any, namespace: str,
                                      deployments: Deployments) -> None:
    install(deployments, helm, api, namespace)
    published = run_cronjob(api, namespace)  # the post-install publishing Job
    assert published.code == 0, published
    secrets, configmaps = secret_data(api, namespace), configmap_data(api, namespace)
    builds = configmap_data(api, BUILDS)
    templates = pod_templates(api, namespace)
    ca, tls = certificate(api, namespace, CA_SECRET), certificate(api, namespace, TLS_SECRET)

    hook = run_hook(api, render(namespace), namespace)  # pre-upgrade
    assert hook.code == 0 and hook.wrote == [], f"the pre-upgrade hook wrote on a no-op upgrade: {hook}"
    helm_install(deployments, helm, api, UMBRELLA, namespace, upgrade=True)
    again = run_cronjob(api, namespace)  # post-upgrade
    assert again.code == 0 and again.wrote == [], f"the publishing run wrote on a no-op upgrade: {again}"

    changes = diff_maps("Secret", secrets, secret_data(api, namespace))
    changes += diff_maps("ConfigMap", configmaps, configmap_data(api, namespace))
    changes += diff_maps(f"ConfigMap({BUILDS})", builds, configmap_data(api, BUILDS))
    assert not changes, f"{helm} no-op upgrade changed: {'; '.join(changes)}"
    after = pod_templates(api, namespace)
    rolled = [f"{ref} (generation {templates[ref][0]} -> {after[ref][0]})" for ref in templates
              if ref in after and (templates[ref][1] != after[ref][1] or templates[ref][0] != after[ref][0])]
    assert not rolled, f"{helm} no-op upgrade changed pod templates (a rollout): {', '.join(rolled)}"
    assert certificate(api, namespace, CA_SECRET).serial_number == ca.serial_number, "CA was replaced"
    assert certificate(api, namespace, TLS_SECRET).serial_number == tls.serial_number, (
        f"Secret/{TLS_SECRET}: serving certificate reissued on a no-op upgrade")


def test_domain_change_needs_the_ca_rotated(helm3: Helm, api: Any, namespace: str,
                                            deployments: Deployments) -> None:
    install(deployments, helm3, api, namespace)
    ca = certificate(api, namespace, CA_SECRET)
    tls = certificate(api, namespace, TLS_SECRET)
    assert "git.homeci.localhost" in dns_names(tls), f"Secret/{TLS_SECRET} SANs {dns_names(tls)}"
    domain = ["global.domain=lab.example.test"]

    refused = run_hook(api, render(namespace, sets=domain), namespace)
    errors = [line for line in refused.log if line.startswith("certs: error:")]
    assert refused.code == 1 and len(errors) == 1, f"the pre-upgrade hook for a new domain: {refused}"
    assert "name constraints" in errors[0] and "rotating the CA" in errors[0], errors[0]
    assert certificate(api, namespace, TLS_SECRET).serial_number == tls.serial_number, (
        f"Secret/{TLS_SECRET} was replaced by a certificate clients would refuse")
    assert certificate(api, namespace, CA_SECRET).serial_number == ca.serial_number

    # The README's rotation: delete the CA Secret; the next pass makes a CA for the new domain.
    client.CoreV1Api(api).delete_namespaced_secret(CA_SECRET, namespace)
    rotated = run_hook(api, render(namespace, sets=domain), namespace)
    assert rotated.code == 0, rotated
    helm_install(deployments, helm3, api, UMBRELLA, namespace, upgrade=True, set_values=domain)

    new_ca, new_tls = certificate(api, namespace, CA_SECRET), certificate(api, namespace, TLS_SECRET)
    assert new_ca.serial_number != ca.serial_number
    permitted = new_ca.extensions.get_extension_for_class(x509.NameConstraints).value.permitted_subtrees or []
    assert [n.value for n in permitted] == ["lab.example.test"], f"new CA permits {permitted}"
    names = dns_names(new_tls)
    for host in ("git.lab.example.test", "ci.lab.example.test", "registry.lab.example.test",
                 "*.lab.example.test"):
        assert host in names, f"Secret/{TLS_SECRET} SANs lack {host}: {names}"
    assert not any(n.endswith("homeci.localhost") for n in names), f"old names kept: {names}"
    new_tls.verify_directly_issued_by(new_ca)
    cm = client.CoreV1Api(api).read_namespaced_config_map(CA_SECRET, namespace).data["ca.crt"]
    assert x509.load_pem_x509_certificate(cm.encode()) == new_ca, f"ConfigMap/{CA_SECRET} has the old CA"
