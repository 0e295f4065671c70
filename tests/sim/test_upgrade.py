"""Issue 6, 3.2: an upgrade with the same values changes nothing (no Secret/ConfigMap data, CA and
serving certificate unchanged, no pod template change so no rollout); changing the domain reissues the
serving certificate for the new names and keeps the CA."""

from __future__ import annotations

from typing import Any

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
from homeci_testing.support import UMBRELLA

CA_SECRET = "homeci-ca"
TLS_SECRET = "homeci-tls"


def test_noop_upgrade_changes_nothing(helm: Helm, api: Any, namespace: str,
                                      deployments: Deployments) -> None:
    helm_install(deployments, helm, api, UMBRELLA, namespace)
    secrets, configmaps = secret_data(api, namespace), configmap_data(api, namespace)
    templates = pod_templates(api, namespace)
    ca, tls = certificate(api, namespace, CA_SECRET), certificate(api, namespace, TLS_SECRET)

    helm_install(deployments, helm, api, UMBRELLA, namespace, upgrade=True)

    changes = diff_maps("Secret", secrets, secret_data(api, namespace))
    changes += diff_maps("ConfigMap", configmaps, configmap_data(api, namespace))
    assert not changes, f"{helm} no-op upgrade changed: {'; '.join(changes)}"
    after = pod_templates(api, namespace)
    rolled = [f"{ref} (generation {templates[ref][0]} -> {after[ref][0]})" for ref in templates
              if ref in after and (templates[ref][1] != after[ref][1] or templates[ref][0] != after[ref][0])]
    assert not rolled, f"{helm} no-op upgrade changed pod templates (a rollout): {', '.join(rolled)}"
    assert certificate(api, namespace, CA_SECRET).serial_number == ca.serial_number, "CA was replaced"
    assert certificate(api, namespace, TLS_SECRET).serial_number == tls.serial_number, (
        f"Secret/{TLS_SECRET}: serving certificate reissued on a no-op upgrade")


def test_domain_change_reissues_serving_cert_keeps_ca(helm3: Helm, api: Any, namespace: str,
                                                     deployments: Deployments) -> None:
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    ca = certificate(api, namespace, CA_SECRET)
    tls = certificate(api, namespace, TLS_SECRET)
    assert "git.homeci.localhost" in dns_names(tls), f"Secret/{TLS_SECRET} SANs {dns_names(tls)}"

    helm_install(deployments, helm3, api, UMBRELLA, namespace, upgrade=True,
                 set_values=["global.domain=lab.example.test"])

    new_tls = certificate(api, namespace, TLS_SECRET)
    names = dns_names(new_tls)
    assert new_tls.serial_number != tls.serial_number, f"Secret/{TLS_SECRET} not reissued for the new domain"
    for host in ("git.lab.example.test", "ci.lab.example.test", "registry.lab.example.test",
                 "*.lab.example.test"):
        assert host in names, f"Secret/{TLS_SECRET} SANs lack {host}: {names}"
    assert not any(n.endswith("homeci.localhost") for n in names), f"old names kept: {names}"
    new_ca = certificate(api, namespace, CA_SECRET)
    assert new_ca.serial_number == ca.serial_number, f"Secret/{CA_SECRET}: CA replaced on a domain change"
    assert new_tls.issuer == ca.subject, "new serving certificate not issued by the kept CA"
