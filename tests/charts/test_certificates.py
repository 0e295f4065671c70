"""The CA and the serving certificate: no key material in any render; the certificate program runs as a
hook before install/upgrade/rollback and as a renewal CronJob, with RBAC for exactly the objects it keeps;
and what it writes (run here offline with each scenario's own environment: homeci_testing.certs) is a
name-constrained CA published in ConfigMap <release>-ca and a serving certificate chaining to it that
covers every public host (SANs only: Go ignores the CN)."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from homeci import contract
from homeci import manifests as mf
from homeci_testing import certs

from .conftest import NAMESPACE, RELEASE, UMBRELLA, dig, is_hook

PRE = "pre-install,pre-upgrade,pre-rollback"
HOOK_NAME = f"{RELEASE}-certs-hook"
NAME = f"{RELEASE}-certs"
# A PEM block with content (a script naming the markers is no key material).
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----[A-Za-z0-9+/=\s]{40,}-----END [A-Z ]+-----")


def _cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def _secret_cert(secret: mf.Manifest, key: str = "tls.crt") -> x509.Certificate:
    return _cert(base64.b64decode(secret.obj["data"][key]))


def ca_cert(objs: list[mf.Manifest]) -> x509.Certificate:
    cm = mf.get(objs, "ConfigMap", f"{RELEASE}-ca")
    return _cert(cm.obj["data"]["ca.crt"])


def public_hosts(objs: list[mf.Manifest], values: dict[str, Any]) -> set[str]:
    hosts = set(contract.hosts(values).values())
    for ing in mf.by_kind(objs, "Ingress"):
        hosts |= {r["host"] for r in ing.obj["spec"].get("rules") or [] if r.get("host")}
    return hosts


def _verify_signature(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    key = issuer.public_key()
    assert cert.signature_hash_algorithm is not None
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:  # pragma: no cover - we only issue RSA and ECDSA
        raise AssertionError(f"unexpected CA key type {type(key).__name__}")


def _serving(objs: list[mf.Manifest]) -> mf.Manifest | None:
    return next((m for m in objs if m.kind == "Secret" and m.name == f"{RELEASE}-tls"), None)


def _env(job: mf.Manifest) -> dict[str, str]:
    ((_path, c),) = list(job.containers())
    return {e["name"]: str(e.get("value", "")) for e in c.get("env") or []}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _runner_on(values: dict[str, Any]) -> bool:
    return (
        dig(values, "drone.enabled", True) is not False
        and dig(values, "drone.runner.enabled", True) is not False
    )


@pytest.fixture
def installed(umbrella_manifests: list[mf.Manifest]) -> list[mf.Manifest]:
    """The render plus what the hook Job writes into an empty namespace."""
    return certs.with_certificates(umbrella_manifests)


# --- the render ------------------------------------------------------------------------------------


def test_no_key_material_is_rendered(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    """Nothing secret and nothing generated at render time: offline renders (helm template, Argo CD) are the
    same every time. The only PEM allowed is your CA's public certificate (certificates.caCertificate) in the
    program's environment."""
    names = [
        m.ref
        for m in umbrella_manifests
        if (m.kind, m.name)
        in {("Secret", f"{RELEASE}-ca"), ("Secret", f"{RELEASE}-tls"), ("ConfigMap", f"{RELEASE}-ca")}
    ]
    assert not names, f"{names} rendered: the certificate program creates them in the cluster"
    allowed = (dig(values, "certificates.caCertificate", "") or "").strip()
    problems = [
        m.ref
        for m in umbrella_manifests
        if any(PEM_BLOCK.search(text) for text in _strings(m.obj) if text.strip() != allowed)
    ]
    assert not problems, f"PEM material rendered in {problems}"


def test_hook_runs_the_program_before_install_upgrade_and_rollback(
    umbrella_manifests: list[mf.Manifest],
) -> None:
    job = mf.get(umbrella_manifests, "Job", HOOK_NAME)
    assert job.annotations.get("helm.sh/hook") == PRE, f"{job.ref} helm.sh/hook"
    assert job.annotations.get("helm.sh/hook-delete-policy") == "before-hook-creation,hook-succeeded"
    weight = int(job.annotations["helm.sh/hook-weight"])
    spec = job.pod_spec() or {}
    assert spec.get("serviceAccountName") == HOOK_NAME, f"{job.ref} serviceAccountName"
    assert job.obj["spec"]["backoffLimit"] <= 1 and job.obj["spec"]["activeDeadlineSeconds"] <= 600
    support = [m for m in umbrella_manifests if m.name == HOOK_NAME and m.kind != "Job"]
    kinds = sorted(m.kind for m in support)
    assert {"ConfigMap", "Role", "RoleBinding", "ServiceAccount"} <= set(kinds), f"hook objects: {kinds}"
    for m in support:
        assert m.annotations.get("helm.sh/hook") == PRE, (
            f"{m.ref} is not a {PRE} hook: the Job needs it first"
        )
        assert int(m.annotations["helm.sh/hook-weight"]) < weight, f"{m.ref} must come before {job.ref}"
        assert m.namespace == NAMESPACE, f"{m.ref} namespace: the hook runs before other namespaces exist"
    script = mf.get(umbrella_manifests, "ConfigMap", HOOK_NAME).obj["data"]["certs.py"]
    assert script == (UMBRELLA / "files" / "certs.py").read_text(), f"ConfigMap/{HOOK_NAME} certs.py"
    assert _env(job)["CA_CONFIGMAP_NAMESPACES"] == NAMESPACE, (
        f"{job.ref}: before install only the release namespace exists"
    )


def test_renewal_cronjob_and_publishing_job(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    cron = mf.get(umbrella_manifests, "CronJob", NAME)
    assert not is_hook(cron), f"{cron.ref} must be part of the release"
    spec = cron.obj["spec"]
    assert spec["schedule"] == dig(values, "certificates.renewal.schedule", "17 3 * * *"), (
        f"{cron.ref} schedule"
    )
    assert spec["concurrencyPolicy"] == "Forbid", f"{cron.ref} concurrencyPolicy"
    assert (cron.pod_spec() or {})["serviceAccountName"] == NAME
    want = [NAMESPACE] + ([contract.Names(RELEASE).build_namespace] if _runner_on(values) else [])
    assert _env(cron)["CA_CONFIGMAP_NAMESPACES"].split(",") == want, f"{cron.ref} CA_CONFIGMAP_NAMESPACES"
    publish = [m for m in umbrella_manifests if m.kind == "Job" and m.name == f"{RELEASE}-certs-publish"]
    if len(want) == 1:
        assert not publish, (
            "a publishing Job although ConfigMap <release>-ca goes to the release namespace only"
        )
        return
    (job,) = publish
    assert not is_hook(job), f"{job.ref}: on install an object of the release (a hook after an upgrade)"
    assert (job.pod_spec() or {})["serviceAccountName"] == NAME, (
        f"{job.ref} uses the release's ServiceAccount"
    )
    assert _env(job) == _env(cron), f"{job.ref} and {cron.ref} run the program with different settings"
    pod_labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert "helm.sh/chart" not in pod_labels and "app.kubernetes.io/version" not in pod_labels, (
        f"{cron.ref} pod template labels change with every chart version"
    )


def test_environment_follows_the_values(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    env = _env(mf.get(umbrella_manifests, "Job", HOOK_NAME))
    domain = contract.domain(values)
    dns = {
        *contract.hosts(values).values(),
        f"*.{domain}",
        *(dig(values, "certificates.extraDnsNames") or []),
    }
    assert env["DNS_NAMES"].split(",") == sorted(dns), "DNS_NAMES"
    assert env["IP_ADDRESSES"].split(",") == sorted(dig(values, "certificates.extraIpAddresses") or [""]), (
        "IP_ADDRESSES"
    )
    assert env["DOMAIN"] == domain
    mode = dig(values, "global.tls.mode", "generate")
    assert env["TLS_MODE"] == mode
    assert env["CA_SECRET"] == (
        dig(values, "global.tls.existingSecret") if mode == "existingSecret" else f"{RELEASE}-ca"
    )
    assert env["CREATE_SERVING_SECRET"] == str(dig(values, "certificates.createServingSecret", True)).lower()
    assert ("CA_CERTIFICATE" in env) == bool(
        mode == "existingSecret" and dig(values, "certificates.caCertificate")
    )


def test_rbac_names_exactly_what_the_program_keeps(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    generate = dig(values, "global.tls.mode", "generate") == "generate"
    serving = dig(values, "certificates.createServingSecret", True) is not False
    ca_secret = f"{RELEASE}-ca" if generate else dig(values, "global.tls.existingSecret")
    for name in (NAME, HOOK_NAME):
        roles = [m for m in umbrella_manifests if m.kind == "Role" and m.name == name]
        assert roles, f"no Role/{name}"
        for role in roles:
            granted: dict[tuple[str, str], set[str]] = {}
            for rule in role.obj["rules"]:
                assert rule["apiGroups"] == [""], f"{role.ref}: {rule}"
                for res in rule["resources"]:
                    for obj in rule.get("resourceNames") or ["*"]:
                        granted.setdefault((res, obj), set()).update(rule["verbs"])
            want = {("configmaps", f"{RELEASE}-ca"): {"get", "update"}, ("configmaps", "*"): {"create"}}
            if role.namespace == NAMESPACE:
                want[("secrets", ca_secret)] = {"get", "update"} if generate else {"get"}
                want[("secrets", f"{RELEASE}-tls")] = {"get", "update"} if serving else {"get"}
                want[("events", "*")] = {"create"}
                if generate or serving:
                    want[("secrets", "*")] = {"create"}
            assert granted == want, f"{role.ref} grants {granted}, want {want}"
            binding = mf.get(
                [m for m in umbrella_manifests if m.namespace == role.namespace], "RoleBinding", name
            )
            assert binding.obj["subjects"] == [
                {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}
            ]
    cluster = [
        m.ref
        for m in umbrella_manifests
        if m.kind in ("ClusterRole", "ClusterRoleBinding") and "certs" in m.name
    ]
    assert not cluster, f"the certificate program needs no cluster-wide rights: {cluster}"


# --- what the program writes (offline pass with each scenario's environment) -----------------------


def test_ca_is_a_name_constrained_ca(installed: list[mf.Manifest], values: dict[str, Any]) -> None:
    ca = ca_cert(installed)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca, f"ConfigMap/{RELEASE}-ca data.ca.crt: BasicConstraints CA is false"
    if dig(values, "global.tls.mode", "generate") != "generate":
        return  # your own CA: the program only warns when it has no constraints (tests/unit)
    assert bc.path_length == 0, "a generated CA signs end-entity certificates only (pathLen 0)"
    ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical, f"ConfigMap/{RELEASE}-ca: nameConstraints must be critical"
    permitted = {n.value for n in ext.value.permitted_subtrees or [] if isinstance(n, x509.DNSName)}
    domain = contract.domain(values)
    assert domain in permitted, f"CA permits DNS {sorted(permitted)}, not global.domain {domain}"
    outside = {
        n.removeprefix("*.")
        for n in dig(values, "certificates.extraDnsNames") or []
        if not n.removeprefix("*.").endswith("." + domain)
    }
    assert permitted == {domain} | outside, f"CA permits DNS {sorted(permitted)}"
    ips = {str(n.value) for n in ext.value.permitted_subtrees or [] if isinstance(n, x509.IPAddress)}
    want_ips = {
        f"{ip}/{32 if '.' in ip else 128}" for ip in dig(values, "certificates.extraIpAddresses") or []
    }
    assert ips == want_ips, f"CA permits IP {sorted(ips)}, want exactly {sorted(want_ips)}"
    excluded = {str(n.value) for n in ext.value.excluded_subtrees or []}
    for family, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        if not any((":" in ip) == (family == 6) for ip in want_ips):
            assert everything in excluded, f"CA does not exclude {everything} (no IPv{family} address listed)"


def test_serving_certificate_chain(installed: list[mf.Manifest], values: dict[str, Any]) -> None:
    secret = _serving(installed)
    if secret is None:
        assert dig(values, "certificates.createServingSecret") is False, (
            f"the program wrote no Secret/{RELEASE}-tls, yet certificates.createServingSecret is not false"
        )
        pytest.skip("serving certificate provided by the user (certificates.createServingSecret=false)")
    assert secret.obj.get("type") == "kubernetes.io/tls", f"{secret.ref} type"
    ca = ca_cert(installed)
    cert = _secret_cert(secret)
    assert cert.issuer == ca.subject, (
        f"{secret.ref} data.tls.crt issuer {cert.issuer} != CA subject {ca.subject}"
    )
    _verify_signature(cert, ca)
    assert _secret_cert(secret, "ca.crt") == ca, (
        f"{secret.ref} data.ca.crt differs from ConfigMap/{RELEASE}-ca"
    )
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now + datetime.timedelta(minutes=5) < cert.not_valid_after_utc
    days = dig(values, "certificates.servingValidityDays", 397)
    left = cert.not_valid_after_utc - now
    assert datetime.timedelta(days=days - 1) < left <= datetime.timedelta(days=days), (
        f"{secret.ref} is valid for {left}, certificates.servingValidityDays is {days}"
    )
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku, f"{secret.ref} data.tls.crt lacks serverAuth"
    notes = secret.annotations
    assert notes.get("homeci.dev/not-after") == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), (
        f"{secret.ref} annotation homeci.dev/not-after"
    )
    renew = cert.not_valid_after_utc - datetime.timedelta(
        days=dig(values, "certificates.renewBeforeDays", 30)
    )
    assert notes.get("homeci.dev/renew-after") == renew.strftime("%Y-%m-%dT%H:%M:%SZ"), (
        f"{secret.ref} annotation homeci.dev/renew-after"
    )


def test_serving_certificate_covers_every_public_host(
    installed: list[mf.Manifest], values: dict[str, Any]
) -> None:
    secret = _serving(installed)
    if secret is None:
        pytest.skip("serving certificate provided by the user (certificates.createServingSecret=false)")
    cert = _secret_cert(secret)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    sans = set(san.get_values_for_type(x509.DNSName))
    domain = contract.domain(values)
    missing = sorted(
        h
        for h in public_hosts(installed, values)
        if h not in sans and not (f"*.{h.split('.', 1)[1]}" in sans and h.endswith(domain))
    )
    assert not missing, f"{secret.ref} data.tls.crt SANs {sorted(sans)} miss {missing}"
    assert f"*.{domain}" in sans, f"{secret.ref} data.tls.crt lacks *.{domain} (apps deployed by pipelines)"
    for name in dig(values, "certificates.extraDnsNames", []) or []:
        assert name in sans, f"{secret.ref} data.tls.crt lacks certificates.extraDnsNames {name}"
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    for ip in dig(values, "certificates.extraIpAddresses", []) or []:
        assert ip in ips, f"{secret.ref} data.tls.crt lacks IP SAN {ip} (certificates.extraIpAddresses)"
    recorded = secret.annotations.get("homeci.dev/hosts", "").split(",")
    assert sorted(recorded) == sorted(sans | ips), f"{secret.ref} annotation homeci.dev/hosts != SANs"


def test_ca_secret_and_configmap_agree(installed: list[mf.Manifest], values: dict[str, Any]) -> None:
    cm = mf.get(installed, "ConfigMap", f"{RELEASE}-ca")
    bundle, pem = cm.obj["data"]["bundle.crt"], cm.obj["data"]["ca.crt"]
    assert bundle.endswith(pem) and len(bundle) > len(pem), (
        f"{cm.ref} data.bundle.crt must be the public roots followed by ca.crt"
    )
    if dig(values, "global.tls.mode", "generate") != "generate":
        names = [m.ref for m in installed if m.kind == "Secret" and m.name == f"{RELEASE}-ca"]
        assert not names, f"{names} written although global.tls.mode=existingSecret"
        assert ca_cert(installed) == _cert(dig(values, "certificates.caCertificate")), (
            f"{cm.ref} is not certificates.caCertificate (the Secret is absent in an empty namespace)"
        )
        return
    secret = mf.get(installed, "Secret", f"{RELEASE}-ca")
    assert secret.obj.get("type") == "kubernetes.io/tls"
    assert _secret_cert(secret) == ca_cert(installed), (
        f"{secret.ref} tls.crt != ConfigMap/{RELEASE}-ca ca.crt"
    )


def test_written_objects_are_kept_on_uninstall(installed: list[mf.Manifest]) -> None:
    written = [m for m in installed if m.source == "certs.py --print"]
    assert written, "the program wrote nothing"
    problems = [
        f"{m.ref} metadata.annotations[helm.sh/resource-policy] is not keep"
        for m in written
        if m.annotations.get("helm.sh/resource-policy") != "keep"
    ]
    problems += [
        f"{m.ref} says it is managed by Helm"
        for m in written
        if m.labels.get("app.kubernetes.io/managed-by") == "Helm"
    ]
    assert not problems, "\n".join(problems)


def test_generated_credentials_are_kept(umbrella_manifests: list[mf.Manifest]) -> None:
    problems = [
        f"{m.ref} metadata.annotations[helm.sh/resource-policy] is not keep"
        for m in umbrella_manifests
        if m.kind == "Secret"
        and m.name in (f"{RELEASE}-admin", f"{RELEASE}-registry-auth")
        and m.annotations.get("helm.sh/resource-policy") != "keep"
    ]
    assert not problems, "\n".join(problems)
