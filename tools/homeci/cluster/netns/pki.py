"""Certificates and kubeconfigs of the real node: one cluster CA (made by :func:`homeci.ca.new_ca`, the
project's one CA builder), ECDSA P-256 leaf keys, written once.

etcd listens on the namespace's loopback only and needs no TLS; everything else authenticates with
client certificates signed by the cluster CA (the admin identity is in ``system:masters``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from homeci import ca

DAYS = 365


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def _load(pair: Pair) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return cert, key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def ensure_ca(directory: Path, cn: str) -> Pair:
    pair = Pair(directory / "ca.crt", directory / "ca.key")
    if pair.cert.is_file() and pair.key.is_file():
        return pair
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = ca.new_ca(cn)
    _write(pair.key, ca.key_pem(key), 0o600)
    _write(pair.cert, ca.cert_pem(cert))
    return pair


def ensure_leaf(issuer: Pair, directory: Path, stem: str, *, cn: str, orgs: tuple[str, ...] = (),
                server_names: tuple[str, ...] = (), client: bool = False) -> Pair:
    """A leaf certificate ``<stem>.crt``/``.key`` (server if ``server_names``, client if ``client``)."""
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    if pair.cert.is_file() and pair.key.is_file():
        return pair
    ca_cert, ca_key = _load(issuer)
    key = _key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_now()).not_valid_after(_now() + dt.timedelta(days=DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        # Python 3.13 clients verify with VERIFY_X509_STRICT, which requires the Authority Key Identifier
        # (Go's x509 adds both identifiers by itself; kubeadm's certificates carry them).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
    )
    if server_names:
        sans: list[x509.GeneralName] = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    _write(pair.key, _key_pem(key), 0o600)
    _write(pair.cert, ca.cert_pem(cert))
    return pair


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_sa_keys(directory: Path) -> Pair:
    """The ServiceAccount token signing key (``sa.key``) and its public half (``sa.pub``)."""
    pair = Pair(directory / "sa.pub", directory / "sa.key")
    if pair.cert.is_file() and pair.key.is_file():
        return pair
    key = _key()
    _write(pair.key, _key_pem(key), 0o600)
    pair.cert.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return pair


def write_kubeconfig(path: Path, *, server: str, ca: Path, client: Pair, user: str,
                     cluster: str) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(client.cert),
                                          "client-key": str(client.key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
