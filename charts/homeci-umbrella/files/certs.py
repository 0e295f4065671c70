#!/usr/bin/env python3
"""homeci certificates: the CA, the serving certificate and the public CA ConfigMaps, kept in the cluster.

Runs as the umbrella's Helm hook Job (before install, upgrade and rollback) and as its CronJob (renewal
without `helm upgrade`). One pass:

1. The CA. TLS_MODE=generate: Secret CA_SECRET is created once (ECDSA P-256, X.509 name constraints:
   permitted DNS subtrees DOMAIN and every DNS name outside it, IP addresses only those in IP_ADDRESSES,
   every other address excluded) and never replaced. TLS_MODE=existingSecret: the user's Secret is read
   (never written); without tls.key only the public certificate is used, and without the Secret
   CA_CERTIFICATE stands in when no serving certificate must be signed. A CA without name constraints
   is reported (log line and a Warning Event).
2. ConfigMap CA_CONFIGMAP in every namespace of CA_CONFIGMAP_NAMESPACES: ca.crt (the CA) and bundle.crt
   (SYSTEM_BUNDLE, this image's public roots, followed by the CA).
3. Secret TLS_SECRET (CREATE_SERVING_SECRET=true): kept while it was issued for DNS_NAMES + IP_ADDRESSES
   by this CA and more than RENEW_BEFORE_DAYS remain, else reissued (and checked with OpenSSL's own
   verifier against the CA before it is written). CREATE_SERVING_SECRET=false: the user's Secret is only
   checked, and an expiry inside the window is reported.

Objects this program writes are not Helm's: they carry helm.sh/resource-policy=keep (objects an earlier
chart version rendered are adopted: Helm skips deleting a live object that says keep) and survive
`helm uninstall`. Nothing is written when nothing changed. Every problem is one line `certs: error: ...`
and the exit status is 1; warnings (`certs: warning: ...`) also become Kubernetes Events.

Crypto: the OpenSSL library (libcrypto 3) every Python image links, through ctypes; no key or
certificate maths here. Kubernetes: the pod's ServiceAccount token, urllib. Standard library only.

Environment (the chart sets it): NAMESPACE, RELEASE, TLS_MODE, CA_SECRET, CA_CONFIGMAP,
CA_CONFIGMAP_NAMESPACES (comma-separated), TLS_SECRET, CREATE_SERVING_SECRET, DOMAIN, DNS_NAMES and
IP_ADDRESSES (comma-separated), CA_COMMON_NAME, CA_VALIDITY_DAYS, SERVING_VALIDITY_DAYS,
RENEW_BEFORE_DAYS; optional CA_CERTIFICATE (PEM), SYSTEM_BUNDLE (default
/etc/ssl/certs/ca-certificates.crt), LIBCRYPTO (the library's file name or path).

Usage: certs.py            reconcile the cluster (in a pod, or with KUBERNETES_SERVICE_HOST/PORT and
                           SERVICEACCOUNT_DIR pointing at a token and the API server's CA)
       certs.py --print    no cluster: print what a pass writes into an empty namespace (a JSON List)
"""

from __future__ import annotations

import base64
import calendar
import copy
import ctypes
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PROGRAM = "certs"
DAY = 86400
KEEP_KEY = "helm.sh/resource-policy"
KEEP = {KEEP_KEY: "keep"}
A_HOSTS = "homeci.dev/hosts"
A_CA_SHA = "homeci.dev/ca-sha256"
A_NOT_AFTER = "homeci.dev/not-after"
A_RENEW_AFTER = "homeci.dev/renew-after"
A_CONSTRAINTS = "homeci.dev/name-constraints"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DNS_NAME = re.compile(
    r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
CN_LIMIT = 64


class CertsError(Exception):
    """A problem the operator must fix; the message is one line that says what to do."""


class Conflict(Exception):
    """Someone else wrote the object first (409): start the pass again."""


# --- OpenSSL (libcrypto 3) through ctypes ------------------------------------------------------------
# Every function used is declared once, with its C signature. Pointers are ints (c_void_p).

_P = ctypes.c_void_p
_I = ctypes.c_int
_L = ctypes.c_long
_S = ctypes.c_char_p


class _Tm(ctypes.Structure):
    # struct tm (glibc and musl): nine ints, then tm_gmtoff and tm_zone.
    _fields_ = [
        ("tm_sec", _I),
        ("tm_min", _I),
        ("tm_hour", _I),
        ("tm_mday", _I),
        ("tm_mon", _I),
        ("tm_year", _I),
        ("tm_wday", _I),
        ("tm_yday", _I),
        ("tm_isdst", _I),
        ("tm_gmtoff", _L),
        ("tm_zone", _S),
    ]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, _S, ctypes.c_size_t]),
    "ERR_clear_error": (None, []),
    "BIO_s_mem": (_P, []),
    "BIO_new": (_P, [_P]),
    "BIO_new_mem_buf": (_P, [_S, _I]),
    "BIO_ctrl": (_L, [_P, _I, _L, _P]),
    "BIO_free": (_I, [_P]),
    "PEM_read_bio_X509": (_P, [_P, _P, _P, _P]),
    "PEM_write_bio_X509": (_I, [_P, _P]),
    "PEM_read_bio_PrivateKey": (_P, [_P, _P, _P, _P]),
    "PEM_write_bio_PrivateKey": (_I, [_P, _P, _P, _P, _I, _P, _P]),
    "EVP_PKEY_CTX_new_from_name": (_P, [_P, _S, _S]),
    "EVP_PKEY_keygen_init": (_I, [_P]),
    "EVP_PKEY_CTX_set_group_name": (_I, [_P, _S]),
    "EVP_PKEY_generate": (_I, [_P, ctypes.POINTER(_P)]),
    "EVP_PKEY_CTX_free": (None, [_P]),
    "EVP_PKEY_free": (None, [_P]),
    "EVP_PKEY_get_bits": (_I, [_P]),
    "EVP_PKEY_get0_type_name": (_S, [_P]),
    "EVP_sha256": (_P, []),
    "BN_bin2bn": (_P, [_S, _I, _P]),
    "BN_to_ASN1_INTEGER": (_P, [_P, _P]),
    "BN_free": (None, [_P]),
    "ASN1_INTEGER_free": (None, [_P]),
    "ASN1_TIME_to_tm": (_I, [_P, ctypes.POINTER(_Tm)]),
    "X509_new": (_P, []),
    "X509_free": (None, [_P]),
    "X509_set_version": (_I, [_P, _L]),
    "X509_set_serialNumber": (_I, [_P, _P]),
    "X509_getm_notBefore": (_P, [_P]),
    "X509_getm_notAfter": (_P, [_P]),
    "X509_time_adj_ex": (_P, [_P, _I, _L, ctypes.POINTER(ctypes.c_int64)]),
    "X509_NAME_new": (_P, []),
    "X509_NAME_free": (None, [_P]),
    "X509_NAME_add_entry_by_txt": (_I, [_P, _S, _I, _S, _I, _I, _I]),
    "X509_NAME_print_ex": (_I, [_P, _P, _I, ctypes.c_ulong]),
    "X509_get_subject_name": (_P, [_P]),
    "X509_set_subject_name": (_I, [_P, _P]),
    "X509_set_issuer_name": (_I, [_P, _P]),
    "X509_set_pubkey": (_I, [_P, _P]),
    "X509_get0_pubkey": (_P, [_P]),
    "X509V3_set_ctx": (None, [_P, _P, _P, _P, _P, _I]),
    "X509V3_EXT_nconf": (_P, [_P, _P, _S, _S]),
    "X509_add_ext": (_I, [_P, _P, _I]),
    "X509_EXTENSION_free": (None, [_P]),
    "X509_get_ext_by_NID": (_I, [_P, _I, _I]),
    "X509_get_ext": (_P, [_P, _I]),
    "X509V3_EXT_print": (_I, [_P, _P, ctypes.c_ulong, _I]),
    "OBJ_sn2nid": (_I, [_S]),
    "X509_sign": (_I, [_P, _P, _P]),
    "X509_check_private_key": (_I, [_P, _P]),
    "X509_check_ca": (_I, [_P]),
    "X509_STORE_new": (_P, []),
    "X509_STORE_free": (None, [_P]),
    "X509_STORE_add_cert": (_I, [_P, _P]),
    "X509_STORE_CTX_new": (_P, []),
    "X509_STORE_CTX_free": (None, [_P]),
    "X509_STORE_CTX_init": (_I, [_P, _P, _P, _P]),
    "X509_STORE_CTX_get_error": (_I, [_P]),
    "X509_verify_cert": (_I, [_P]),
    "X509_verify_cert_error_string": (_S, [_L]),
    "X509_STORE_CTX_set_time": (None, [_P, ctypes.c_ulong, ctypes.c_int64]),
}
_BIO_CTRL_INFO = 3  # BIO_get_mem_data
_MBSTRING_UTF8 = 0x1000
# XN_FLAG_RFC2253 = ASN1_STRFLGS_RFC2253, SEP_COMMA_PLUS, DN_REV, DUMP_UNKNOWN_FIELDS
_XN_FLAG_RFC2253 = 0x1110317
_V3_CTX_SIZE = 256  # X509V3_CTX is ~64 bytes in OpenSSL 3; zeroed means "no config database"


def _load_libcrypto() -> ctypes.CDLL:
    """libcrypto 3, the one this Python's ssl module already loaded (LIBCRYPTO overrides the name)."""
    names = [os.environ.get("LIBCRYPTO", ""), "libcrypto.so.3", "libcrypto.3.dylib"]
    errors = []
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        for fn, (restype, argtypes) in _SIGNATURES.items():
            func = getattr(lib, fn)
            func.restype = restype
            func.argtypes = argtypes
        return lib
    raise CertsError(
        f"cannot load OpenSSL's libcrypto 3 ({'; '.join(errors)}); run this program with a "
        "Python whose ssl module uses OpenSSL 3, or set LIBCRYPTO to the library's path"
    )


_lib: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load_libcrypto()
    return _lib


def _openssl_error(what: str) -> CertsError:
    lib = _c()
    reasons = []
    while code := lib.ERR_get_error():
        buf = ctypes.create_string_buffer(256)
        lib.ERR_error_string_n(code, buf, len(buf))
        reasons.append(buf.value.decode(errors="replace"))
    return CertsError(f"OpenSSL: {what} failed ({'; '.join(reasons) or 'no reason given'})")


def _ok(result: int, what: str) -> None:
    if result != 1:
        raise _openssl_error(what)


def _ptr(result: int | None, what: str) -> int:
    if not result:
        raise _openssl_error(what)
    return result


def _bio_text(write: Callable[[int], int], what: str) -> str:
    """Run ``write(bio)`` against a memory BIO and return what it wrote."""
    lib = _c()
    bio = _ptr(lib.BIO_new(lib.BIO_s_mem()), "BIO_new")
    try:
        if write(bio) <= 0:
            raise _openssl_error(what)
        data = ctypes.c_char_p()
        size = lib.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
        return ctypes.string_at(data, size).decode()
    finally:
        lib.BIO_free(bio)


def _read_bio(pem: str, read: Callable[[int], int | None], what: str) -> int:
    lib = _c()
    raw = pem.encode()
    bio = _ptr(lib.BIO_new_mem_buf(raw, len(raw)), "BIO_new_mem_buf")
    try:
        return _ptr(read(bio), what)
    finally:
        lib.BIO_free(bio)


class _Owned:
    """An OpenSSL object this process owns, released with the libcrypto function ``FREE``."""

    FREE = ""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __del__(self) -> None:
        if _lib is not None and self.handle:
            getattr(_lib, self.FREE)(self.handle)
            self.handle = 0

    @classmethod
    def _from_pem(cls, pem: str, reader: str, what: str) -> int:
        lib = _c()
        return _read_bio(pem, lambda b: getattr(lib, reader)(b, None, None, None), f"reading a PEM {what}")


class Key(_Owned):
    """An EVP_PKEY."""

    FREE = "EVP_PKEY_free"

    @classmethod
    def generate(cls) -> Key:
        """A new ECDSA P-256 key."""
        lib = _c()
        ctx = _ptr(lib.EVP_PKEY_CTX_new_from_name(None, b"EC", None), "EVP_PKEY_CTX_new_from_name(EC)")
        try:
            _ok(lib.EVP_PKEY_keygen_init(ctx), "EVP_PKEY_keygen_init")
            _ok(lib.EVP_PKEY_CTX_set_group_name(ctx, b"P-256"), "EVP_PKEY_CTX_set_group_name(P-256)")
            out = _P()
            _ok(lib.EVP_PKEY_generate(ctx, ctypes.byref(out)), "EVP_PKEY_generate")
            return cls(_ptr(out.value, "EVP_PKEY_generate"))
        finally:
            lib.EVP_PKEY_CTX_free(ctx)

    @classmethod
    def from_pem(cls, pem: str) -> Key:
        return cls(cls._from_pem(pem, "PEM_read_bio_PrivateKey", "private key"))

    def pem(self) -> str:
        """Unencrypted PKCS#8 PEM."""
        lib = _c()
        return _bio_text(
            lambda b: lib.PEM_write_bio_PrivateKey(b, self.handle, None, None, 0, None, None),
            "writing the private key",
        )


def describe_key(handle: int) -> str:
    lib = _c()
    name = (lib.EVP_PKEY_get0_type_name(handle) or b"?").decode()
    return f"{name} {lib.EVP_PKEY_get_bits(handle)}-bit"


class Cert(_Owned):
    """An X509 certificate."""

    FREE = "X509_free"

    @classmethod
    def from_pem(cls, pem: str) -> Cert:
        return cls(cls._from_pem(pem, "PEM_read_bio_X509", "certificate"))

    def pem(self) -> str:
        lib = _c()
        return _bio_text(lambda b: lib.PEM_write_bio_X509(b, self.handle), "writing the certificate")

    def subject(self) -> str:
        lib = _c()
        name = lib.X509_get_subject_name(self.handle)
        return _bio_text(lambda b: lib.X509_NAME_print_ex(b, name, 0, _XN_FLAG_RFC2253), "printing a name")

    def not_after(self) -> int:
        """notAfter as a Unix time."""
        lib = _c()
        tm = _Tm()
        _ok(lib.ASN1_TIME_to_tm(lib.X509_getm_notAfter(self.handle), ctypes.byref(tm)), "ASN1_TIME_to_tm")
        return calendar.timegm(
            (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, 0, 0, 0)
        )

    def is_ca(self) -> bool:
        return bool(_c().X509_check_ca(self.handle))

    def matches(self, key: Key) -> bool:
        lib = _c()
        result = lib.X509_check_private_key(self.handle, key.handle) == 1
        lib.ERR_clear_error()
        return bool(result)

    def key_type(self) -> str:
        return describe_key(_ptr(_c().X509_get0_pubkey(self.handle), "X509_get0_pubkey"))

    def name_constraints(self) -> str:
        """The nameConstraints extension in one line (``permitted DNS:a, IP:...; excluded ...``) or ""."""
        lib = _c()
        loc = lib.X509_get_ext_by_NID(self.handle, lib.OBJ_sn2nid(b"nameConstraints"), -1)
        if loc < 0:
            return ""
        ext = _ptr(lib.X509_get_ext(self.handle, loc), "X509_get_ext")
        text = _bio_text(lambda b: lib.X509V3_EXT_print(b, ext, 0, 0), "printing nameConstraints")
        parts: list[str] = []
        for line in (ln.strip() for ln in text.splitlines()):
            if line.rstrip(":").lower() in ("permitted", "excluded"):
                parts.append(f"{line.rstrip(':').lower()} ")
            elif line and parts:
                parts[-1] += ("" if parts[-1].endswith(" ") else ", ") + _cidr(line)
        return "; ".join(p.strip() for p in parts)

    def verify_with(self, ca: Cert, at: int) -> str:
        """OpenSSL's own chain verification of this certificate against ``ca`` as the only trust anchor
        (signature, validity at Unix time ``at``, name constraints): "" when it passes, else the reason."""
        lib = _c()
        store = _ptr(lib.X509_STORE_new(), "X509_STORE_new")
        ctx = 0
        try:
            _ok(lib.X509_STORE_add_cert(store, ca.handle), "X509_STORE_add_cert")
            ctx = _ptr(lib.X509_STORE_CTX_new(), "X509_STORE_CTX_new")
            _ok(lib.X509_STORE_CTX_init(ctx, store, self.handle, None), "X509_STORE_CTX_init")
            lib.X509_STORE_CTX_set_time(ctx, 0, at)
            if lib.X509_verify_cert(ctx) == 1:
                return ""
            code = lib.X509_STORE_CTX_get_error(ctx)
            lib.ERR_clear_error()
            return (lib.X509_verify_cert_error_string(code) or b"unknown error").decode()
        finally:
            if ctx:
                lib.X509_STORE_CTX_free(ctx)
            lib.X509_STORE_free(store)


def _cidr(entry: str) -> str:
    """``IP:10.0.0.0/255.0.0.0`` (OpenSSL's print) as ``IP:10.0.0.0/8``; other names unchanged."""
    kind, _, value = entry.partition(":")
    if kind.strip() not in ("IP", "IP Address"):
        return entry
    address, _, mask = value.strip().partition("/")
    try:
        prefix = bin(int(ipaddress.ip_address(mask))).count("1")
        return f"IP:{ipaddress.ip_network(f'{ipaddress.ip_address(address)}/{prefix}', strict=False)}"
    except ValueError:
        return entry


def _name(cn: str) -> int:
    lib = _c()
    name = _ptr(lib.X509_NAME_new(), "X509_NAME_new")
    for field_, value in (("O", "homeci"), ("CN", cn[:CN_LIMIT])):
        raw = value.encode()
        _ok(
            lib.X509_NAME_add_entry_by_txt(name, field_.encode(), _MBSTRING_UTF8, raw, len(raw), -1, 0),
            f"X509_NAME_add_entry_by_txt({field_})",
        )
    return name


def build_certificate(
    *,
    subject_cn: str,
    key: Key,
    issuer: tuple[Cert, Key] | None,
    not_before: int,
    not_after: int,
    extensions: list[tuple[str, str]],
) -> Cert:
    """A signed X.509 v3 certificate for ``key``: self-signed when ``issuer`` is None, else signed by the
    issuer's key. ``extensions`` are OpenSSL config lines (name, value) applied in order."""
    lib = _c()
    cert = Cert(_ptr(lib.X509_new(), "X509_new"))
    _ok(lib.X509_set_version(cert.handle, 2), "X509_set_version")
    serial = secrets.token_bytes(16)
    serial = bytes([serial[0] & 0x7F | 0x01]) + serial[1:]  # positive, never zero
    bn = _ptr(lib.BN_bin2bn(serial, len(serial), None), "BN_bin2bn")
    try:
        asn1 = _ptr(lib.BN_to_ASN1_INTEGER(bn, None), "BN_to_ASN1_INTEGER")
        try:
            _ok(lib.X509_set_serialNumber(cert.handle, asn1), "X509_set_serialNumber")
        finally:
            lib.ASN1_INTEGER_free(asn1)
    finally:
        lib.BN_free(bn)
    for getter, when in ((lib.X509_getm_notBefore, not_before), (lib.X509_getm_notAfter, not_after)):
        at = ctypes.c_int64(when)
        _ptr(lib.X509_time_adj_ex(getter(cert.handle), 0, 0, ctypes.byref(at)), "X509_time_adj_ex")
    name = _name(subject_cn)
    try:
        _ok(lib.X509_set_subject_name(cert.handle, name), "X509_set_subject_name")
        if issuer is None:
            _ok(lib.X509_set_issuer_name(cert.handle, name), "X509_set_issuer_name")
    finally:
        lib.X509_NAME_free(name)
    if issuer is not None:
        _ok(
            lib.X509_set_issuer_name(cert.handle, lib.X509_get_subject_name(issuer[0].handle)),
            "X509_set_issuer_name",
        )
    _ok(lib.X509_set_pubkey(cert.handle, key.handle), "X509_set_pubkey")
    v3 = ctypes.create_string_buffer(_V3_CTX_SIZE)
    lib.X509V3_set_ctx(v3, cert.handle if issuer is None else issuer[0].handle, cert.handle, None, None, 0)
    for ext_name, value in extensions:
        ext = _ptr(
            lib.X509V3_EXT_nconf(None, v3, ext_name.encode(), value.encode()),
            f"the {ext_name} extension ({value})",
        )
        try:
            _ok(lib.X509_add_ext(cert.handle, ext, -1), f"X509_add_ext({ext_name})")
        finally:
            lib.X509_EXTENSION_free(ext)
    signer = key if issuer is None else issuer[1]
    if lib.X509_sign(cert.handle, signer.handle, lib.EVP_sha256()) <= 0:
        raise _openssl_error("X509_sign")
    return cert


# --- what the certificates say -----------------------------------------------------------------------


def _network(address: str) -> str:
    """``IP:<address>/<netmask>`` of a single address (the form OpenSSL's nameConstraints takes)."""
    ip = ipaddress.ip_address(address)
    return f"IP:{ip}/{ipaddress.ip_network(ip).netmask}"


def permitted_dns(domain: str, dns_names: list[str]) -> list[str]:
    """The DNS subtrees a CA must permit: the domain, and each name outside it (a ``*.`` dropped)."""
    subtrees = [domain.lower()]
    for name in (n.lower().removeprefix("*.") for n in dns_names):
        if not any(name == s or name.endswith("." + s) for s in subtrees):
            subtrees.append(name)
    return subtrees


def ca_extensions(domain: str, dns_names: list[str], ips: list[str]) -> list[tuple[str, str]]:
    """A CA that signs end-entity certificates only, for these names only: permitted DNS subtrees, the
    listed IP addresses, and every address of a family none is listed for excluded (a permitted subtree
    only restricts its own name type, so "no IP at all" must be said as an exclusion)."""
    constraints = [f"permitted;DNS:{s}" for s in permitted_dns(domain, dns_names)]
    constraints += [f"permitted;{_network(ip)}" for ip in ips]
    versions = {ipaddress.ip_address(ip).version for ip in ips}
    if 4 not in versions:
        constraints.append("excluded;IP:0.0.0.0/0.0.0.0")
    if 6 not in versions:
        constraints.append("excluded;IP:::/::")
    return [
        ("basicConstraints", "critical,CA:TRUE,pathlen:0"),
        ("keyUsage", "critical,keyCertSign,cRLSign,digitalSignature"),
        ("subjectKeyIdentifier", "hash"),
        ("authorityKeyIdentifier", "keyid:always"),
        ("nameConstraints", "critical," + ",".join(constraints)),
    ]


def serving_extensions(dns_names: list[str], ips: list[str]) -> list[tuple[str, str]]:
    sans = [f"DNS:{n}" for n in dns_names] + [f"IP:{ipaddress.ip_address(ip)}" for ip in ips]
    return [
        ("basicConstraints", "critical,CA:FALSE"),
        ("keyUsage", "critical,digitalSignature"),
        ("extendedKeyUsage", "serverAuth"),
        ("subjectKeyIdentifier", "hash"),
        # The CA's key id; its name and serial instead when it has none (CAs made by other tools may lack it).
        ("authorityKeyIdentifier", "keyid,issuer"),
        ("subjectAltName", ",".join(sans)),
    ]


def pem_sha256(pem: str) -> str:
    """The fingerprint the serving Secret records: SHA-256 of the CA's PEM text, whitespace trimmed."""
    return hashlib.sha256(pem.strip().encode()).hexdigest()


def der_sha256(pem: str) -> str:
    """The usual certificate fingerprint (SHA-256 of the DER), as browsers and `openssl x509` show it."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip())).hexdigest().upper()


def stamp(when: int) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(when))


def day(when: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(when))


# --- configuration -----------------------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@dataclass(frozen=True)
class Config:
    namespace: str
    release: str
    mode: str
    ca_secret: str
    ca_configmap: str
    configmap_namespaces: list[str]
    tls_secret: str
    create_serving_secret: bool
    domain: str
    dns_names: list[str]
    ip_addresses: list[str]
    ca_common_name: str
    ca_validity_days: int
    serving_validity_days: int
    renew_before_days: int
    ca_certificate: str = ""
    system_bundle: str = SYSTEM_BUNDLE

    @property
    def hosts(self) -> str:
        """What the serving certificate is issued for, as the homeci.dev/hosts annotation records it."""
        return ",".join([*self.dns_names, *self.ip_addresses])

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        problems: list[str] = []

        def need(key: str) -> str:
            value = env.get(key, "").strip()
            if not value:
                problems.append(f"environment {key} is empty (the chart sets it: render the Job again)")
            return value

        def days(key: str) -> int:
            text = need(key)
            if text and not (text.isdigit() and int(text) > 0):
                problems.append(f"environment {key}={text!r} is not a positive number of days")
                return 1
            return int(text) if text else 1

        namespace, release, mode = need("NAMESPACE"), need("RELEASE"), need("TLS_MODE")
        names = {key: need(key) for key in ("CA_SECRET", "CA_CONFIGMAP", "TLS_SECRET", "DOMAIN")}
        validity = {
            key: days(key) for key in ("CA_VALIDITY_DAYS", "SERVING_VALIDITY_DAYS", "RENEW_BEFORE_DAYS")
        }
        if mode and mode not in ("generate", "existingSecret"):
            problems.append(f"TLS_MODE={mode!r}: global.tls.mode is generate or existingSecret")
        dns_names = sorted(set(_csv(env.get("DNS_NAMES", ""))))
        ips = sorted(set(_csv(env.get("IP_ADDRESSES", ""))))
        for name in [names["DOMAIN"], *dns_names] if names["DOMAIN"] else dns_names:
            if not DNS_NAME.match(name) or len(name) > 253:
                problems.append(
                    f"{name!r} (global.domain, global.hosts or certificates.extraDnsNames) is "
                    "not a DNS name: use letters, digits, '-' and dots, optionally starting with '*.'"
                )
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                problems.append(f"certificates.extraIpAddresses: {ip!r} is not an IPv4 or IPv6 address")
        config = cls(
            namespace=namespace,
            release=release,
            mode=mode,
            ca_secret=names["CA_SECRET"],
            ca_configmap=names["CA_CONFIGMAP"],
            configmap_namespaces=_csv(env.get("CA_CONFIGMAP_NAMESPACES", "")) or [namespace],
            tls_secret=names["TLS_SECRET"],
            create_serving_secret=env.get("CREATE_SERVING_SECRET", "true").strip().lower() == "true",
            domain=names["DOMAIN"].lower(),
            dns_names=dns_names,
            ip_addresses=ips,
            ca_common_name=env.get("CA_COMMON_NAME", "").strip() or "homeci CA",
            ca_validity_days=validity["CA_VALIDITY_DAYS"],
            serving_validity_days=validity["SERVING_VALIDITY_DAYS"],
            renew_before_days=validity["RENEW_BEFORE_DAYS"],
            ca_certificate=env.get("CA_CERTIFICATE", "").strip(),
            system_bundle=env.get("SYSTEM_BUNDLE", "").strip() or SYSTEM_BUNDLE,
        )
        if config.create_serving_secret and not dns_names:
            problems.append("environment DNS_NAMES is empty: the serving certificate needs the public hosts")
        if problems:
            raise CertsError(" | ".join(problems))
        return config

    def labels(self, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "homeci",
            "app.kubernetes.io/instance": self.release,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "homeci",
            "app.kubernetes.io/managed-by": f"homeci-{PROGRAM}",
        }


# --- where objects live: the Kubernetes API, or memory ------------------------------------------------

Obj = dict[str, Any]
_PLURAL = {"Secret": "secrets", "ConfigMap": "configmaps", "Event": "events"}


class Store(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def create(self, obj: Obj) -> Obj: ...

    def replace(self, obj: Obj) -> Obj: ...

    def event(self, target: Obj, kind: str, reason: str, message: str) -> None: ...


class MemoryStore:
    """An empty namespace in memory: what ``--print`` shows, and how tests replay a pass."""

    def __init__(self, objects: list[Obj] | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        for obj in objects or []:
            self.objects[_key(obj)] = copy.deepcopy(obj)
        self.events: list[tuple[str, str, str, str]] = []
        self.writes: list[str] = []

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, obj: Obj) -> Obj:
        if _key(obj) in self.objects:
            raise Conflict(f"{_ref(obj)} already exists")
        return self._put(obj, "create")

    def replace(self, obj: Obj) -> Obj:
        return self._put(obj, "update")

    def _put(self, obj: Obj, verb: str) -> Obj:
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta["resourceVersion"] = str(len(self.writes) + 1)
        self.objects[_key(stored)] = stored
        self.writes.append(f"{verb} {_ref(stored)}")
        return copy.deepcopy(stored)

    def event(self, target: Obj, kind: str, reason: str, message: str) -> None:
        self.events.append((_ref(target), kind, reason, message))


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name", ""))


def _ref(obj: Obj) -> str:
    kind, namespace, name = _key(obj)
    return f"{kind} {namespace}/{name}"


class KubeApi:
    """The Kubernetes API with the pod's ServiceAccount token (JSON over HTTPS, urllib)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        sa = Path(env.get("SERVICEACCOUNT_DIR") or SA_DIR)
        host = env.get("KUBERNETES_SERVICE_HOST", "")
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise CertsError(
                "KUBERNETES_SERVICE_HOST is not set: run in a pod, or set it, "
                "KUBERNETES_SERVICE_PORT and SERVICEACCOUNT_DIR (token, ca.crt)"
            )
        self.base = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        try:
            self.token = (sa / "token").read_text().strip()
            self.context = ssl.create_default_context(cafile=str(sa / "ca.crt"))
        except OSError as exc:
            raise CertsError(
                f"cannot read the ServiceAccount token and CA in {sa} ({exc.strerror}): the pod "
                "needs automountServiceAccountToken: true"
            ) from None
        self.component = f"homeci-{PROGRAM}"

    def _call(self, method: str, path: str, body: Obj | None = None) -> tuple[int, Obj]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": self.component,
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as resp:
                return int(resp.status), json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read() or b"{}")
            except ValueError:
                answer = {}
            return int(exc.code), answer if isinstance(answer, dict) else {}
        except (OSError, ValueError) as exc:
            raise CertsError(
                f"the Kubernetes API at {self.base} is unreachable ({exc}); check the pod's "
                "network (NetworkPolicy egress to the API server)"
            ) from None

    @staticmethod
    def _path(kind: str, namespace: str, name: str = "") -> str:
        path = f"/api/v1/namespaces/{namespace}/{_PLURAL[kind]}"
        return f"{path}/{name}" if name else path

    def _fail(self, verb: str, what: str, status: int, answer: Obj) -> CertsError:
        message = str(answer.get("message") or f"HTTP {status}")
        hint = {
            403: "the Job's Role does not allow it (render the chart again; RBAC is part of it)",
            401: "the ServiceAccount token was refused",
        }.get(status, "see the API server's message")
        return CertsError(f"cannot {verb} {what}: {message} ({hint})")

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        status, answer = self._call("GET", self._path(kind, namespace, name))
        if status == 404:
            return None
        if status != 200:
            raise self._fail("read", f"{kind} {namespace}/{name}", status, answer)
        return answer

    def create(self, obj: Obj) -> Obj:
        kind, namespace, _ = _key(obj)
        status, answer = self._call("POST", self._path(kind, namespace), obj)
        if status == 409:
            raise Conflict(f"{_ref(obj)} was created meanwhile")
        if status not in (200, 201):
            raise self._fail("create", _ref(obj), status, answer)
        return answer

    def replace(self, obj: Obj) -> Obj:
        kind, namespace, name = _key(obj)
        status, answer = self._call("PUT", self._path(kind, namespace, name), obj)
        if status == 409:
            raise Conflict(f"{_ref(obj)} was changed meanwhile")
        if status != 200:
            raise self._fail("update", _ref(obj), status, answer)
        return answer

    def event(self, target: Obj, kind: str, reason: str, message: str) -> None:
        t_kind, namespace, name = _key(target)
        now = dt.datetime.now(dt.UTC).strftime(TIME_FORMAT)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": t_kind,
                "namespace": namespace,
                "name": name,
                "uid": (target.get("metadata") or {}).get("uid", ""),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component},
            "reportingComponent": self.component,
        }
        status, answer = self._call("POST", self._path("Event", namespace), event)
        if status not in (200, 201):
            log(
                f"warning: could not record the Event on {t_kind} {namespace}/{name}: "
                f"{answer.get('message') or status}"
            )


# --- one pass ----------------------------------------------------------------------------------------


def log(line: str) -> None:
    print(f"{PROGRAM}: {line}", file=sys.stderr, flush=True)


@dataclass
class CA:
    cert: Cert
    pem: str
    key: Key | None
    source: Obj | None  # the Secret it came from (None: certificates.caCertificate)

    @property
    def sha256(self) -> str:
        return pem_sha256(self.pem)


@dataclass
class Pass:
    """One reconciliation: ``run()`` returns the problems (empty: success)."""

    config: Config
    store: Store
    now: int = field(default_factory=lambda: int(time.time()))
    problems: list[str] = field(default_factory=list)

    # -- reporting --
    def warn(self, target: Obj | None, reason: str, message: str) -> None:
        log(f"warning: {message}")
        if target is not None:
            self.store.event(target, "Warning", reason, message)

    def info(self, target: Obj | None, reason: str, message: str) -> None:
        log(message)
        if target is not None:
            self.store.event(target, "Normal", reason, message)

    # -- writing --
    def save(self, current: Obj | None, desired: Obj) -> Obj:
        """Create ``desired``, or update ``current`` to it; nothing when they already agree. On update the
        annotations are merged and data replaced; labels stay as they are (an object adopted from an
        earlier chart version keeps Helm's, so that version could adopt it back)."""
        if current is None:
            return self.store.create(desired)
        merged = copy.deepcopy(current)
        meta = merged.setdefault("metadata", {})
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            **(desired["metadata"].get("annotations") or {}),
        }
        for key in ("data", "type"):
            if key in desired:
                merged[key] = desired[key]
        if merged == current:
            return current
        return self.store.replace(merged)

    def object(
        self,
        kind: str,
        namespace: str,
        name: str,
        component: str,
        annotations: dict[str, str],
        data: dict[str, str],
    ) -> Obj:
        obj: Obj = {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": self.config.labels(component),
                "annotations": {**KEEP, **annotations},
            },
        }
        if kind == "Secret":
            obj["type"] = "kubernetes.io/tls"
            obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        else:
            obj["data"] = data
        return obj

    # -- the pass --
    def run(self) -> list[str]:
        ca = self.ca()
        if ca is None:
            return self.problems
        self.check_ca(ca)
        self.publish(ca, self.config.namespace)
        if self.config.create_serving_secret:
            self.serving(ca)
        else:
            self.check_user_serving()
        for namespace in self.config.configmap_namespaces:
            if namespace != self.config.namespace:
                try:
                    self.publish(ca, namespace)
                except CertsError as exc:
                    self.problems.append(str(exc))
        return self.problems

    # -- the CA --
    def ca(self) -> CA | None:
        cfg = self.config
        secret = self.store.get("Secret", cfg.namespace, cfg.ca_secret)
        if cfg.mode == "existingSecret":
            return self.user_ca(secret)
        if secret is None:
            return self.new_ca()
        return self.loaded_ca(
            secret,
            need_key=True,
            what=f"Secret {cfg.namespace}/{cfg.ca_secret} (the CA this chart generated)",
        )

    def new_ca(self) -> CA:
        cfg = self.config
        key = Key.generate()
        extensions = ca_extensions(cfg.domain, cfg.dns_names, cfg.ip_addresses)
        cert = build_certificate(
            subject_cn=cfg.ca_common_name,
            key=key,
            issuer=None,
            not_before=self.now - 3600,
            not_after=self.now + cfg.ca_validity_days * DAY,
            extensions=extensions,
        )
        pem = cert.pem()
        secret = self.object(
            "Secret",
            cfg.namespace,
            cfg.ca_secret,
            "ca",
            {A_NOT_AFTER: stamp(cert.not_after()), A_CONSTRAINTS: cert.name_constraints()},
            {"tls.crt": pem, "tls.key": key.pem(), "ca.crt": pem},
        )
        saved = self.store.create(secret)
        log(
            f"Secret {cfg.namespace}/{cfg.ca_secret}: created a CA ({cert.subject()}, {cert.key_type()}, "
            f"sha256 {der_sha256(pem)}, valid until {day(cert.not_after())}, name constraints: "
            f"{cert.name_constraints()})"
        )
        return CA(cert, pem, key, saved)

    def user_ca(self, secret: Obj | None) -> CA | None:
        cfg = self.config
        what = f"global.tls.existingSecret: Secret {cfg.namespace}/{cfg.ca_secret}"
        if secret is not None:
            return self.loaded_ca(secret, need_key=cfg.create_serving_secret, what=what)
        if cfg.ca_certificate and not cfg.create_serving_secret:
            cert = self.parse_cert(cfg.ca_certificate, "certificates.caCertificate")
            if cert is None:
                return None
            if not cert.is_ca():
                self.problems.append(
                    "certificates.caCertificate is not a CA certificate (basicConstraints "
                    "CA:TRUE): paste your CA's certificate, not the serving certificate"
                )
                return None
            log(f"{what} does not exist: publishing certificates.caCertificate ({cert.subject()})")
            return CA(cert, cfg.ca_certificate.strip() + "\n", None, None)
        hint = (
            "create it with `homeci ca init DIR` and `kubectl create secret tls ...` (the commands it "
            "prints) before installing"
        )
        if not cfg.create_serving_secret:
            hint += ", or set certificates.caCertificate to the CA's public certificate"
        self.problems.append(f"{what} does not exist: {hint}")
        return None

    def parse_cert(self, pem: str, what: str) -> Cert | None:
        try:
            return Cert.from_pem(pem)
        except CertsError:
            self.problems.append(
                f"{what} is not a PEM certificate: give the CA's certificate "
                "(-----BEGIN CERTIFICATE----- ...)"
            )
            return None

    def loaded_ca(self, secret: Obj, *, need_key: bool, what: str) -> CA | None:
        data = {
            k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()
        }
        pem = (data.get("tls.crt") or data.get("ca.crt") or "").strip()
        if not pem:
            self.problems.append(
                f"{what} has no tls.crt: it must be a kubernetes.io/tls Secret holding the CA "
                "(`kubectl create secret tls NAME --cert=ca.crt --key=ca.key`)"
            )
            return None
        cert = self.parse_cert(pem, f"{what} key tls.crt")
        if cert is None:
            return None
        if not cert.is_ca():
            self.problems.append(
                f"{what}: {cert.subject()} is not a CA certificate (basicConstraints "
                "CA:TRUE); store the CA there, not a serving certificate"
            )
            return None
        key = None
        if need_key:
            try:
                key = Key.from_pem(data.get("tls.key", ""))
            except CertsError:
                self.problems.append(
                    f"{what} has no readable tls.key (an unencrypted PEM private key): the CA "
                    "key is needed to sign the serving certificate"
                )
                return None
            if not cert.matches(key):
                self.problems.append(
                    f"{what}: tls.key is not the key of the certificate in tls.crt; put the "
                    "CA's own key pair in the Secret"
                )
                return None
        if self.config.mode == "generate":
            self.adopt_ca(secret, cert)
        return CA(cert, pem + "\n", key, secret)

    def adopt_ca(self, secret: Obj, cert: Cert) -> None:
        """The generated CA Secret keeps its data; its metadata says keep and what the CA is."""
        desired = {
            "metadata": {
                "annotations": {
                    **KEEP,
                    A_NOT_AFTER: stamp(cert.not_after()),
                    A_CONSTRAINTS: cert.name_constraints() or "none",
                }
            }
        }
        before = (secret.get("metadata") or {}).get("annotations") or {}
        saved = self.save(secret, desired)
        if saved is not secret and before.get(KEEP_KEY) != "keep":
            log(f"Secret {_key(secret)[1]}/{_key(secret)[2]}: adopted (it now outlives the Helm release)")

    def check_ca(self, ca: CA) -> None:
        cfg = self.config
        target = ca.source
        left = ca.cert.not_after() - self.now
        if left <= 0:
            self.problems.append(
                f"the CA {ca.cert.subject()} expired on {day(ca.cert.not_after())}: nothing it "
                "signs is trusted; replace it (README: rotating the CA)"
            )
        elif left <= cfg.renew_before_days * DAY:
            self.warn(
                target,
                "CAExpiring",
                f"the CA {ca.cert.subject()} expires on {day(ca.cert.not_after())}, "
                f"within {cfg.renew_before_days} days; it is never replaced automatically: rotate it "
                "(README: rotating the CA)",
            )
        if not ca.cert.name_constraints():
            self.warn(
                target,
                "CANotNameConstrained",
                f"the CA {ca.cert.subject()} (sha256 {der_sha256(ca.pem)}) has no name constraints: a "
                "machine that trusts it trusts it for every site, so whoever gets its key can "
                "impersonate any HTTPS server to that machine; prefer a CA from `homeci ca init "
                "--domain ...` or one this chart generates (README: rotating the CA)",
            )

    # -- the public CA ConfigMap --
    def bundle(self, ca: CA) -> str:
        try:
            roots = Path(self.config.system_bundle).read_text()
        except OSError:
            log(f"warning: {self.config.system_bundle} is missing: bundle.crt holds only the CA")
            roots = ""
        if roots and not roots.endswith("\n"):
            roots += "\n"
        return roots + ca.pem

    def publish(self, ca: CA, namespace: str) -> None:
        cfg = self.config
        annotations = {
            A_CA_SHA: ca.sha256,
            A_NOT_AFTER: stamp(ca.cert.not_after()),
            A_CONSTRAINTS: ca.cert.name_constraints() or "none",
        }
        desired = self.object(
            "ConfigMap",
            namespace,
            cfg.ca_configmap,
            "ca",
            annotations,
            {"ca.crt": ca.pem, "bundle.crt": self.bundle(ca)},
        )
        current = self.store.get("ConfigMap", namespace, cfg.ca_configmap)
        saved = self.save(current, desired)
        if current is None:
            log(f"ConfigMap {namespace}/{cfg.ca_configmap}: created (ca.crt, bundle.crt)")
        elif saved is not current:
            was = (current.get("metadata") or {}).get("annotations") or {}
            what = "adopted" if was.get(KEEP_KEY) != "keep" else "updated"
            log(f"ConfigMap {namespace}/{cfg.ca_configmap}: {what} (ca.crt, bundle.crt)")

    # -- the serving certificate --
    def serving(self, ca: CA) -> None:
        cfg = self.config
        current = self.store.get("Secret", cfg.namespace, cfg.tls_secret)
        reason = self.reissue_reason(current, ca)
        if reason is None:
            assert current is not None
            cert = Cert.from_pem(_secret_text(current, "tls.crt"))
            self.save(current, {"metadata": {"annotations": self.serving_annotations(ca, cert)}})
            return
        if ca.key is None:
            self.problems.append(
                f"Secret {cfg.namespace}/{cfg.tls_secret} must be (re)issued ({reason}) but the "
                "CA key is not available"
            )
            return
        issued = self.issue(ca)
        if issued is None:
            return
        cert, key_pem = issued
        saved = self.save(current, self.serving_object(ca, cert, key_pem))
        message = (
            f"Secret {cfg.namespace}/{cfg.tls_secret}: issued a serving certificate ({reason}) for "
            f"{cfg.hosts}, valid until {day(cert.not_after())}"
        )
        if current is None:
            log(message)
        else:
            self.info(saved, "CertificateRenewed", message)

    def serving_annotations(self, ca: CA, cert: Cert) -> dict[str, str]:
        cfg = self.config
        not_after = cert.not_after()
        return {
            **KEEP,
            A_HOSTS: cfg.hosts,
            A_CA_SHA: ca.sha256,
            A_NOT_AFTER: stamp(not_after),
            A_RENEW_AFTER: stamp(not_after - cfg.renew_before_days * DAY),
        }

    def serving_object(self, ca: CA, cert: Cert, key_pem: str) -> Obj:
        cfg = self.config
        return self.object(
            "Secret",
            cfg.namespace,
            cfg.tls_secret,
            "tls",
            self.serving_annotations(ca, cert),
            {"tls.crt": cert.pem(), "tls.key": key_pem, "ca.crt": ca.pem},
        )

    def reissue_reason(self, current: Obj | None, ca: CA) -> str | None:
        """Why the serving certificate must be issued again, or None to keep it."""
        cfg = self.config
        if current is None:
            return "none yet"
        notes = (current.get("metadata") or {}).get("annotations") or {}
        if notes.get(A_HOSTS) != cfg.hosts:
            return f"hosts changed from {notes.get(A_HOSTS) or 'unknown'}"
        if notes.get(A_CA_SHA) != ca.sha256:
            return "issued by another CA"
        try:
            cert = Cert.from_pem(_secret_text(current, "tls.crt"))
            key = Key.from_pem(_secret_text(current, "tls.key"))
        except (CertsError, ValueError):
            return "its tls.crt or tls.key is unreadable"
        if not cert.matches(key):
            return "its tls.key does not match tls.crt"
        problem = cert.verify_with(ca.cert, self.now)
        if problem and "expired" not in problem:
            return f"it does not verify against the CA ({problem})"
        not_after = cert.not_after()
        if not_after - self.now > cfg.renew_before_days * DAY:
            return None
        possible = min(self.now + cfg.serving_validity_days * DAY, ca.cert.not_after())
        if possible > not_after + DAY:
            return (
                f"it expires on {day(not_after)}, within certificates.renewBeforeDays={cfg.renew_before_days}"
            )
        self.warn(
            current,
            "CertificateExpiring",
            f"Secret {cfg.namespace}/{cfg.tls_secret} expires on {day(not_after)} and cannot be renewed "
            f"beyond the CA's own end ({day(ca.cert.not_after())}): rotate the CA (README: rotating the CA)",
        )
        return None

    def issue(self, ca: CA) -> tuple[Cert, str] | None:
        cfg = self.config
        assert ca.key is not None
        key = Key.generate()
        not_after = min(self.now + cfg.serving_validity_days * DAY, ca.cert.not_after())
        host = next((n for n in cfg.dns_names if not n.startswith("*.") and len(n) <= CN_LIMIT), cfg.domain)
        cert = build_certificate(
            subject_cn=host,
            key=key,
            issuer=(ca.cert, ca.key),
            not_before=self.now - 3600,
            not_after=not_after,
            extensions=serving_extensions(cfg.dns_names, cfg.ip_addresses),
        )
        problem = cert.verify_with(ca.cert, self.now)
        if problem:
            hint = ""
            if "subtree" in problem:
                hint = (
                    f": the CA's name constraints ({ca.cert.name_constraints()}) do not cover {cfg.hosts}; "
                    "a name-constrained CA cannot vouch for other names, so either keep global.domain, "
                    "certificates.extraDnsNames and extraIpAddresses inside them or rotate the CA "
                    "(README: rotating the CA; every client must then trust the new one)"
                )
            self.problems.append(
                f"the new serving certificate does not verify against the CA ({problem}){hint}"
            )
            return None
        return cert, key.pem()

    def check_user_serving(self) -> None:
        """createServingSecret=false: the Secret is the user's; only say when it is missing or expiring."""
        cfg = self.config
        try:
            current = self.store.get("Secret", cfg.namespace, cfg.tls_secret)
        except CertsError as exc:
            log(f"warning: {exc}")
            return
        if current is None:
            self.warn(
                None,
                "",
                f"certificates.createServingSecret=false but Secret {cfg.namespace}/"
                f"{cfg.tls_secret} does not exist: create it (kubernetes.io/tls, signed by your CA, SANs "
                f"{cfg.hosts}); the components cannot serve HTTPS before it exists",
            )
            return
        try:
            not_after = Cert.from_pem(_secret_text(current, "tls.crt")).not_after()
        except (CertsError, ValueError):
            self.warn(
                current,
                "CertificateUnreadable",
                f"Secret {cfg.namespace}/{cfg.tls_secret} has no readable tls.crt",
            )
            return
        if not_after - self.now <= cfg.renew_before_days * DAY:
            self.warn(
                current,
                "CertificateExpiring",
                f"Secret {cfg.namespace}/{cfg.tls_secret} (yours: "
                f"certificates.createServingSecret=false) expires on {day(not_after)}: renew it",
            )


def _secret_text(secret: Obj, key: str) -> str:
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def reconcile(config: Config, store: Store, now: int | None = None, attempts: int = 3) -> list[str]:
    """One pass, started again (up to ``attempts`` times) when another writer got there first."""
    for attempt in range(1, attempts + 1):
        run = Pass(config, store) if now is None else Pass(config, store, now)
        try:
            return run.run()
        except Conflict as exc:
            if attempt == attempts:
                return [f"{exc}: another writer keeps changing it; run again"]
            log(f"{exc}; starting the pass again")
    return []


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    offline = argv[1:] == ["--print"]
    if argv[1:] and not offline:
        print(f"usage: {argv[0]} [--print]", file=sys.stderr)
        return 2
    try:
        config = Config.from_env(env)
        store: Store = MemoryStore() if offline else KubeApi(env)
        problems = reconcile(config, store)
    except CertsError as exc:
        problems = [str(p) for p in str(exc).split(" | ")]
    for problem in problems:
        print(f"{PROGRAM}: error: {problem}", file=sys.stderr, flush=True)
    if problems:
        return 1
    if isinstance(store, MemoryStore):
        items = [store.objects[k] for k in sorted(store.objects)]
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout, indent=1, sort_keys=True)
        print()
    else:
        log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
