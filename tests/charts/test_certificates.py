"""The serving certificate chains to the CA published in ConfigMap <release>-ca and covers every public
host (SANs only: Go ignores the CN); the CA is kept and published consistently."""

from __future__ import annotations

import base64
import datetime
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from homeci import contract
from homeci import manifests as mf
from homeci.helm import Helm

from .conftest import RELEASE, UMBRELLA, dig


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


def test_ca_is_a_ca(umbrella_manifests: list[mf.Manifest]) -> None:
    ca = ca_cert(umbrella_manifests)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca, f"ConfigMap/{RELEASE}-ca data.ca.crt: BasicConstraints CA is false"


def test_serving_certificate_chain(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    secret = _serving(umbrella_manifests)
    if secret is None:
        assert dig(values, "certificates.createServingSecret") is False, (
            f"Secret/{RELEASE}-tls not rendered although certificates.createServingSecret is not false"
        )
        pytest.skip("serving certificate provided by the user (certificates.createServingSecret=false)")
    assert secret.obj.get("type") == "kubernetes.io/tls", f"{secret.ref} type"
    ca = ca_cert(umbrella_manifests)
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
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=30), (
        f"{secret.ref} expires within 30 days"
    )
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku, f"{secret.ref} data.tls.crt lacks serverAuth"


def test_serving_certificate_covers_every_public_host(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    secret = _serving(umbrella_manifests)
    if secret is None:
        pytest.skip("serving certificate provided by the user (certificates.createServingSecret=false)")
    cert = _secret_cert(secret)
    sans = set(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    )
    domain = contract.domain(values)
    missing = sorted(
        h
        for h in public_hosts(umbrella_manifests, values)
        if h not in sans and not (f"*.{h.split('.', 1)[1]}" in sans and h.endswith(domain))
    )
    assert not missing, f"{secret.ref} data.tls.crt SANs {sorted(sans)} miss {missing}"
    assert f"*.{domain}" in sans, f"{secret.ref} data.tls.crt lacks *.{domain} (apps deployed by pipelines)"
    for name in dig(values, "certificates.extraDnsNames", []) or []:
        assert name in sans, f"{secret.ref} data.tls.crt lacks certificates.extraDnsNames {name}"
    ips = {
        str(ip)
        for ip in cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.IPAddress)
    }
    for ip in dig(values, "certificates.extraIpAddresses", []) or []:
        assert ip in ips, f"{secret.ref} data.tls.crt lacks IP SAN {ip} (certificates.extraIpAddresses)"
    recorded = secret.annotations.get("homeci.dev/hosts", "").split(",")
    assert sorted(recorded) == sorted(sans | ips), f"{secret.ref} annotation homeci.dev/hosts != SANs"


def test_generated_ca_secret_matches_configmap(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    if dig(values, "global.tls.mode", "generate") != "generate":
        names = [m.ref for m in umbrella_manifests if m.kind == "Secret" and m.name == f"{RELEASE}-ca"]
        assert not names, f"{names} rendered although global.tls.mode=existingSecret"
        given = _cert(dig(values, "certificates.caCertificate"))
        assert ca_cert(umbrella_manifests) == given, (
            f"ConfigMap/{RELEASE}-ca is not certificates.caCertificate"
        )
        return
    secret = mf.get(umbrella_manifests, "Secret", f"{RELEASE}-ca")
    assert secret.obj.get("type") == "kubernetes.io/tls"
    assert _secret_cert(secret) == ca_cert(umbrella_manifests), (
        f"{secret.ref} tls.crt != ConfigMap/{RELEASE}-ca ca.crt"
    )


def test_generated_secrets_are_kept(umbrella_manifests: list[mf.Manifest]) -> None:
    problems = [
        f"{m.ref} metadata.annotations[helm.sh/resource-policy] is not keep"
        for m in umbrella_manifests
        if m.kind == "Secret"
        and m.name in (f"{RELEASE}-ca", f"{RELEASE}-tls", f"{RELEASE}-admin", f"{RELEASE}-registry-auth")
        and m.annotations.get("helm.sh/resource-policy") != "keep"
    ]
    assert not problems, "\n".join(problems)


# --- the reuse rule, exercised with fake lookup results (lookup itself needs a cluster) -------------

REUSE_TEMPLATE = """\
{{- range $case, $v := .Values.cases }}
{{ $case }}: {{ include "homeci.servingCertReusable" (dict "old" $v.old "hosts" $v.hosts
    "caFingerprint" $v.fp "renewBeforeDays" 30) | quote }}
{{- end }}
"""


def _old_secret(days_left: float, hosts: str = "a.example,b.example", fp: str = "f1") -> dict[str, Any]:
    not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days_left)
    return {
        "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"},
        "metadata": {
            "annotations": {
                "homeci.dev/hosts": hosts,
                "homeci.dev/ca-sha256": fp,
                "homeci.dev/not-after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        },
    }


@pytest.mark.parametrize("major", [3, 4])
def test_serving_certificate_reuse_rule(tmp_path: Path, major: int) -> None:
    chart = tmp_path / "reuse"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: reuse\nversion: 0.0.1\n")
    shutil.copy(UMBRELLA / "templates" / "_helpers.tpl", chart / "templates" / "_helpers.tpl")
    (chart / "templates" / "cases.yaml").write_text(REUSE_TEMPLATE)
    hosts, fp = "a.example,b.example", "f1"
    cases = {
        "keep": _old_secret(200),
        "renew-soon": _old_secret(29),
        "expired": _old_secret(-1),
        "hosts-changed": _old_secret(200, hosts="a.example"),
        "ca-changed": _old_secret(200, fp="f2"),
        "missing": {},
        "no-annotations": {"data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}, "metadata": {}},
    }
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"cases": {k: {"old": v, "hosts": hosts, "fp": fp} for k, v in cases.items()}})
    )
    out = yaml.safe_load(
        Helm(major).template(chart, values_files=[values]).split("---", 1)[-1].split("\n", 1)[1]
    )
    want = {k: ("true" if k == "keep" else "") for k in cases}
    assert out == want, f"homeci.servingCertReusable under Helm {major}: {out} != {want}"
