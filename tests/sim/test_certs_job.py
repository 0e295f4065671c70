"""The certificate program against a real kube-apiserver (the simulated cluster), with the RBAC the chart
renders: the hook before install creates the name-constrained CA, the serving certificate and ConfigMap
<release>-ca; the installed CronJob publishes the ConfigMap in the build namespace and otherwise writes
nothing; a certificate made to expire soon is renewed by the CronJob with an Event; the Role refuses what
it does not name; your own CA Secret is only read. (kwok runs no containers: tests/sim/certsjob.py runs the
Jobs' program as the kubelet would.)"""

from __future__ import annotations

from typing import Any

from certsjob import events, install, objects, pem, render, run_cronjob, run_hook
from cryptography import x509
from kubernetes import client

from homeci.helm import Helm
from homeci_testing.clusters import Deployments, helm_install
from homeci_testing.support import RELEASE, UMBRELLA

CA, TLS = f"{RELEASE}-ca", f"{RELEASE}-tls"


def _versions(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {ref: obj["metadata"]["resourceVersion"] for ref, obj in found.items()}


def test_hook_then_cronjob_write_once_and_then_nothing(
    helm3: Helm, api: Any, namespace: str, deployments: Deployments
) -> None:
    install(deployments, helm3, api, namespace)
    found = objects(api, namespace)
    builds = f"ConfigMap/{RELEASE}-builds/{CA}"
    assert set(found) == {
        f"Secret/{namespace}/{CA}",
        f"Secret/{namespace}/{TLS}",
        f"ConfigMap/{namespace}/{CA}",
    }, f"after the pre-install hook: {sorted(found)} (the build namespace does not exist yet)"
    ca = x509.load_pem_x509_certificate(pem(found[f"Secret/{namespace}/{CA}"]))
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [n.value for n in constraints.permitted_subtrees or []] == ["homeci.localhost"]
    leaf = x509.load_pem_x509_certificate(pem(found[f"Secret/{namespace}/{TLS}"]))
    leaf.verify_directly_issued_by(ca)
    for ref, obj in found.items():
        meta = obj["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep", f"{ref} is not kept on uninstall"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "homeci-certs", f"{ref} labels"
        assert "meta.helm.sh/release-name" not in meta.get("annotations", {}), f"{ref} claims to be Helm's"

    first = run_cronjob(api, namespace)  # also what Job <release>-certs-publish does after install
    assert first.code == 0, f"the CronJob's first run: {first}"
    assert first.wrote == [f"certs: ConfigMap {RELEASE}-builds/{CA}: created (ca.crt, bundle.crt)"], first
    found = objects(api, namespace)
    assert pem(found[builds], "ca.crt") == pem(found[f"ConfigMap/{namespace}/{CA}"], "ca.crt")

    again = run_cronjob(api, namespace)
    assert again.code == 0 and again.wrote == [], f"a run with nothing to do wrote: {again}"
    assert _versions(objects(api, namespace)) == _versions(found), "a run with nothing to do changed objects"


def test_a_certificate_made_to_expire_soon_is_renewed_by_the_cronjob(
    helm3: Helm, api: Any, namespace: str, deployments: Deployments
) -> None:
    # The install's hook issues a two-day certificate; the chart's CronJob (renewBeforeDays 30) renews it.
    short = {"SERVING_VALIDITY_DAYS": "2", "RENEW_BEFORE_DAYS": "1"}
    result = run_hook(api, render(namespace), namespace, env=short)
    assert result.code == 0, result
    before = x509.load_pem_x509_certificate(pem(objects(api, namespace)[f"Secret/{namespace}/{TLS}"]))
    assert (before.not_valid_after_utc - before.not_valid_before_utc).days == 2
    helm_install(deployments, helm3, api, UMBRELLA, namespace)
    renewed = run_cronjob(api, namespace)
    assert renewed.code == 0, renewed
    after = objects(api, namespace)[f"Secret/{namespace}/{TLS}"]
    cert = x509.load_pem_x509_certificate(pem(after))
    assert (
        cert.serial_number != before.serial_number
        and (cert.not_valid_after_utc - before.not_valid_after_utc).days > 300
    )
    assert ("Normal", "CertificateRenewed") in [e[:2] for e in events(api, namespace, TLS)], (
        f"no CertificateRenewed Event on Secret/{TLS}: {events(api, namespace, TLS)}"
    )
    notes = after["metadata"]["annotations"]
    assert notes["homeci.dev/not-after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert notes["homeci.dev/renew-after"] < notes["homeci.dev/not-after"]


def test_your_serving_certificate_expiring_is_an_event(
    helm3: Helm, api: Any, namespace: str, deployments: Deployments
) -> None:
    """createServingSecret=false: the program never writes <release>-tls, but says when it expires."""
    result = run_hook(
        api, render(namespace), namespace, env={"SERVING_VALIDITY_DAYS": "5", "RENEW_BEFORE_DAYS": "1"}
    )
    assert result.code == 0, result
    mine = objects(api, namespace)[f"Secret/{namespace}/{TLS}"]
    install(deployments, helm3, api, namespace, set_values=["certificates.createServingSecret=false"])
    run = run_cronjob(api, namespace)
    assert run.code == 0, run
    assert any("expires on" in line and "renew it" in line for line in run.log), run
    assert (
        objects(api, namespace)[f"Secret/{namespace}/{TLS}"]["metadata"]["resourceVersion"]
        == mine["metadata"]["resourceVersion"]
    ), f"Secret/{TLS} was written although it is yours"
    assert ("Warning", "CertificateExpiring") in [e[:2] for e in events(api, namespace, TLS)]


def test_the_role_allows_only_what_it_names(api: Any, namespace: str) -> None:
    """The hook's Role names its Secrets: pointed at another Secret the program is refused by the API server
    and says so in one line, writing nothing."""
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "someone-else"}, "stringData": {"x": "y"}})
    result = run_hook(api, render(namespace), namespace, env={"TLS_SECRET": "someone-else"})
    assert result.code == 1, result
    errors = [line for line in result.log if line.startswith("certs: error: ")]
    assert (
        len(errors) == 1
        and "cannot read Secret" in errors[0]
        and "someone-else" in errors[0]
        and "Role does not allow it" in errors[0]
    ), result
    assert core.read_namespaced_secret("someone-else", namespace).data == {"x": "eQ=="}


def test_your_ca_secret_is_only_read(helm3: Helm, api: Any, namespace: str, deployments: Deployments) -> None:
    """existingSecret mode: the Role grants `get` on your Secret only; the serving certificate is signed by
    it; your CA has no name constraints, which is logged and reported as an Event on your Secret."""
    from homeci import ca as camod

    plain, key = camod.new_ca("Lab CA", constrained=False)
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "my-ca"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": camod.cert_pem(plain).decode(), "tls.key": camod.key_pem(key).decode()},
        },
    )
    version = core.read_namespaced_secret("my-ca", namespace).metadata.resource_version
    sets = ["global.tls.mode=existingSecret", "global.tls.existingSecret=my-ca"]
    install(deployments, helm3, api, namespace, set_values=sets)
    assert core.read_namespaced_secret("my-ca", namespace).metadata.resource_version == version
    found = objects(api, namespace)
    assert f"Secret/{namespace}/{CA}" not in found, "a CA was generated in existingSecret mode"
    x509.load_pem_x509_certificate(pem(found[f"Secret/{namespace}/{TLS}"])).verify_directly_issued_by(plain)
    assert ("Warning", "CANotNameConstrained") in [e[:2] for e in events(api, namespace, "my-ca")]
