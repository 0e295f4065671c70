"""The homeci certificate authority: create one, describe it, and check certificates against it.

A CA made here carries X.509 name constraints (critical): it may vouch only for one domain and its
subdomains, the extra DNS names and IP addresses given, and no other address, so a machine that trusts
it system-wide cannot be fooled for any other site even if the key leaks. Key format: RSA 2048 in PKCS#1
PEM (``BEGIN RSA PRIVATE KEY``), which every tool reads (the umbrella's certificate program reads
PKCS#1, PKCS#8, RSA and EC keys alike).
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from homeci.errors import HomeciError, UsageError

CERT_FILE = "ca.crt"
KEY_FILE = "ca.key"
DEFAULT_CN = "homeci CA"
DEFAULT_DAYS = 3650
KEY_BITS = 2048
CN_LIMIT = 64  # X.509 upper bound for a common name (RFC 5280 ub-common-name)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- creating --------------------------------------------------------------------------------------


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 ("traditional OpenSSL") PEM, the only RSA form Helm's genSignedCert accepts for a CA key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def name_constraints(domain: str, dns_names: Sequence[str] = (),
                     ips: Sequence[str] = ()) -> x509.NameConstraints:
    """Permitted: the DNS subtree of ``domain`` and of each name of ``dns_names`` outside it, and exactly the
    addresses ``ips``; excluded: every address of a family none is given for (a permitted subtree restricts
    only its own name type, so "no IP address" must be said as an exclusion)."""
    subtrees = [domain.lower().rstrip(".")]
    for name in (n.lower().rstrip(".").removeprefix("*.") for n in dns_names):
        if not any(name == s or name.endswith("." + s) for s in subtrees):
            subtrees.append(name)
    permitted: list[x509.GeneralName] = [x509.DNSName(s) for s in subtrees]
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    permitted += [x509.IPAddress(ipaddress.ip_network(a)) for a in addresses]
    excluded: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_network(everything))
        for version, everything in ((4, "0.0.0.0/0"), (6, "::/0"))
        if not any(a.version == version for a in addresses)]
    return x509.NameConstraints(permitted, excluded or None)


def new_ca(cn: str = DEFAULT_CN, days: int = DEFAULT_DAYS, *, domain: str | None = None,
           dns_names: Sequence[str] = (), ips: Sequence[str] = (),
           constrained: bool = True) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed CA that may sign end-entity certificates only (pathLen 0), for ``domain`` (default: the
    chart's global.domain), ``dns_names`` and ``ips`` only (name constraints). ``constrained=False`` leaves
    the constraints out, as many other tools do (to show what that allows, in tests)."""
    from homeci import contract

    if days < 1:
        raise UsageError(f"--days {days}: a CA must be valid for at least one day")
    if not 1 <= len(cn) <= CN_LIMIT:
        raise UsageError(f"--cn {cn!r}: a common name has 1 to {CN_LIMIT} characters, e.g. {DEFAULT_CN!r}")
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "homeci")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if constrained:
        constraints = name_constraints(domain or contract.default_domain(), dns_names, ips)
        builder = builder.add_extension(constraints, critical=True)
    return builder.sign(key, hashes.SHA256()), key


def issue(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, names: list[str], *, days: int = 365,
          not_before: dt.datetime | None = None) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A serving certificate for ``names`` (DNS names or IP addresses) signed by the CA. Its CN is the first
    DNS name (none when there is none: OpenSSL would check an address in the CN as a DNS name)."""
    key = new_key()
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    dns = [n.value for n in sans if isinstance(n, x509.DNSName)]
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, dns[0])] if dns else []
    start = not_before or _now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # RFC 5280: the names are all in subjectAltName when the subject is empty, which makes it critical.
        .add_extension(x509.SubjectAlternativeName(sans), critical=not subject)
        .add_extension(_authority_key_id(ca_cert, ca_key), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _authority_key_id(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> x509.AuthorityKeyIdentifier:
    """The CA's own subject key identifier, which OpenSSL matches when it builds the chain: CAs made by
    other tools compute it differently (Go since 1.25, so Helm's genCA: truncated SHA-256, not SHA-1)."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@dataclass(frozen=True)
class CAFiles:
    cert: Path
    key: Path


def init(directory: Path, *, cn: str = DEFAULT_CN, days: int = DEFAULT_DAYS, domain: str | None = None,
         dns_names: Sequence[str] = (), ips: Sequence[str] = ()) -> CAFiles:
    """Write ``ca.crt`` and ``ca.key`` (mode 0600) into ``directory``, which must be new or empty; the CA is
    name-constrained to ``domain``, ``dns_names`` and ``ips`` (see :func:`new_ca`).

    All or nothing: both files are written into a staging directory first and only then moved into place
    (a new directory is renamed into place in one step), so a failure never leaves half a CA behind.
    """
    files = CAFiles(directory / CERT_FILE, directory / KEY_FILE)
    _check_init_target(directory)
    cert, key = new_ca(cn, days, domain=domain, dns_names=dns_names, ips=ips)
    contents = {KEY_FILE: (key_pem(key), 0o600), CERT_FILE: (cert_pem(cert), 0o644)}
    if directory.is_dir():
        _fill_empty_directory(directory, contents)
    else:
        _create_directory(directory, contents)
    return files


def _check_init_target(directory: Path) -> None:
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{parent} is a file, not a directory: give a new or empty directory for ca.crt "
                             "and ca.key")
    if not directory.is_dir():
        return
    try:
        present = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise HomeciError(f"{directory}: cannot list it ({exc.strerror}); check its permissions") from None
    ca_files = [name for name in (CERT_FILE, KEY_FILE) if name in present]
    if ca_files:
        raise HomeciError(
            f"{directory} already holds {' and '.join(ca_files)}: refusing to overwrite a CA; choose an "
            "empty directory (or move the old files away yourself)"
        )
    if present:
        shown = ", ".join(present[:3]) + (f" and {len(present) - 3} more" if len(present) > 3 else "")
        raise HomeciError(f"{directory} is not empty (it holds {shown}): give a new or empty directory, so "
                          "the CA key sits in a directory of its own")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never overwrites; the key has its mode from its first byte
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _create_directory(directory: Path, contents: dict[str, tuple[bytes, int]]) -> None:
    """Write the files into a sibling staging directory and rename it to ``directory`` (one atomic step)."""
    parent = directory.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise HomeciError(f"{parent}: cannot create a directory there ({exc.strerror}); check its "
                          "permissions or give another directory") from None
    try:
        for name, (data, mode) in contents.items():
            _write_new(staging / name, data, mode)
        os.rename(staging, directory)
    except OSError as exc:
        raise _write_error(directory, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # already gone after the rename


def _fill_empty_directory(directory: Path, contents: dict[str, tuple[bytes, int]]) -> None:
    """Stage the files inside ``directory``, then hard-link them into place (never overwriting) together."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=".homeci-ca.", suffix=".partial", dir=directory))
    except OSError as exc:
        raise HomeciError(f"{directory}: cannot write into it ({exc.strerror}); check its permissions") \
            from None
    placed: list[Path] = []
    complete = False
    try:
        for name, (data, mode) in contents.items():
            _write_new(staging / name, data, mode)
        for name in contents:
            os.link(staging / name, directory / name)
            placed.append(directory / name)
        complete = True
    except OSError as exc:
        raise _write_error(directory, exc) from None
    finally:
        if not complete:  # an error or Ctrl-C half way: take back what was placed
            for path in placed:
                path.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


def _write_error(directory: Path, exc: OSError) -> HomeciError:
    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
        return HomeciError(f"{exc.filename2 or exc.filename} appeared while the CA was being written: "
                           "refusing to overwrite it; nothing was written")
    return HomeciError(f"{directory}: cannot write the CA ({exc.strerror}); nothing was written, check "
                       "permissions and free space")


def install_hints(files: CAFiles, *, namespace: str = "homeci", secret: str = "homeci-ca",
                  domain: str | None = None, dns_names: Sequence[str] = (),
                  ips: Sequence[str] = ()) -> list[str]:
    """The commands that make the umbrella use this CA, for the names its constraints permit."""
    from homeci import contract

    install = (f"helm install homeci charts/homeci-umbrella -n {namespace} --create-namespace "
               f"--set global.tls.mode=existingSecret --set global.tls.existingSecret={secret} "
               f"--set global.domain={domain or contract.default_domain()}")
    for key, given in (("extraDnsNames", dns_names), ("extraIpAddresses", ips)):
        if given:
            install += f" --set certificates.{key}={{{','.join(given)}}}"
    return [
        f"kubectl create namespace {namespace}",
        f"kubectl create secret tls {secret} --cert={files.cert} --key={files.key} -n {namespace}",
        install,
    ]


# -- reading ---------------------------------------------------------------------------------------


def parse_certs(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in PEM (or one DER) ``data``; a one-line error naming ``source`` otherwise."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        certs = []
    if not certs:
        raise HomeciError(f"{source}: not a PEM or DER certificate (corrupt or wrong file); "
                          "give the CA's ca.crt (e.g. from `homeci ca init`)")
    return certs


def load_certs(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HomeciError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise HomeciError(f"{path}: is a directory; give the certificate file (e.g. {path}/ca.crt)") from None
    except OSError as exc:
        raise HomeciError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    return parse_certs(data, str(path))


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return [*ext.get_values_for_type(x509.DNSName), *ips]


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _constraints(cert: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def _names(subtrees: Sequence[x509.GeneralName] | None) -> list[x509.DNSName | x509.IPAddress]:
    return [n for n in subtrees or [] if isinstance(n, (x509.DNSName, x509.IPAddress))]


def constraints_text(cert: x509.Certificate) -> str:
    """The name constraints in one line (``permitted DNS:a, IP:1.2.3.4/32; excluded IP:::/0``), or ""."""
    nc = _constraints(cert)
    if nc is None:
        return ""
    parts = []
    for kind, trees in (("permitted", nc.permitted_subtrees), ("excluded", nc.excluded_subtrees)):
        shown = [f"{'IP' if isinstance(n, x509.IPAddress) else 'DNS'}:{n.value}" for n in _names(trees)]
        if shown:
            parts.append(f"{kind} {', '.join(shown)}")
    return "; ".join(parts)


def _within(name: x509.DNSName | x509.IPAddress, trees: list[x509.DNSName | x509.IPAddress]) -> bool:
    for tree in trees:
        if isinstance(name, x509.DNSName) and isinstance(tree, x509.DNSName):
            host, base = name.value.lower().removeprefix("*."), tree.value.lower().lstrip(".")
            if host == base or host.endswith("." + base):
                return True
        elif isinstance(name, x509.IPAddress) and isinstance(tree, x509.IPAddress):
            network = tree.value
            if isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and name.value in network:
                return True
    return False


def outside_constraints(leaf: x509.Certificate, ca: x509.Certificate) -> list[str]:
    """The leaf's DNS names and addresses that the CA's name constraints do not permit (RFC 5280 rules)."""
    nc = _constraints(ca)
    if nc is None:
        return []
    try:
        sans = _names(list(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value))
    except x509.ExtensionNotFound:
        return []
    permitted, excluded = _names(nc.permitted_subtrees), _names(nc.excluded_subtrees)
    bad = []
    for name in sans:
        typed = [t for t in permitted if type(t) is type(name)]
        if _within(name, excluded) or (typed and not _within(name, typed)):
            bad.append(str(name.value))
    return bad


def describe(cert: x509.Certificate) -> dict[str, str]:
    """What ``homeci ca show`` prints, in order."""
    now = _now()
    left = cert.not_valid_after_utc - now
    state = "valid" if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc else "NOT valid now"
    info = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sha256 fingerprint": fingerprint(cert),
        "not before": cert.not_valid_before_utc.isoformat(),
        "not after": cert.not_valid_after_utc.isoformat(),
        "validity": f"{state}; {max(left.days, 0)} days left",
        "ca": "yes" if is_ca(cert) else "no",
    }
    if is_ca(cert):
        info["name constraints"] = constraints_text(cert) or (
            "none: trusting it trusts it for every site (`homeci ca init --domain` makes constrained CAs)")
    names = sans(cert)
    if names:
        info["subject alt names"] = ", ".join(names)
    return info


def secret_cert(name: str, namespace: str,
                kubeconfig: str | os.PathLike[str] | None = None) -> x509.Certificate:
    """The certificate in a cluster Secret (``tls.crt``, else ``ca.crt``)."""
    import base64

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from homeci import kubeaccess

    api = kubeaccess.api_client(kubeconfig)
    kubeaccess.probe(api, kubeconfig)
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace,
                                                              _request_timeout=kubeaccess.PROBE_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise HomeciError(f"secret {namespace}/{name} not found: create it with `kubectl create secret "
                              f"tls {name} --cert=DIR/ca.crt --key=DIR/ca.key -n {namespace}`") from None
        raise HomeciError(f"reading secret {namespace}/{name} failed ({exc.status} {exc.reason}); check that "
                          f"the kubeconfig's user may read Secrets in {namespace}") from None
    except Exception as exc:  # urllib3 connection errors
        raise kubeaccess.unreachable(exc, api, kubeconfig) from None
    data = secret.data or {}
    for key in ("tls.crt", "ca.crt"):
        if key in data:
            return parse_certs(base64.b64decode(data[key]), f"secret {namespace}/{name} key {key}")[0]
    raise HomeciError(f"secret {namespace}/{name} has no tls.crt or ca.crt key; it must be a "
                      "kubernetes.io/tls Secret holding the CA")


# -- verifying -------------------------------------------------------------------------------------


def host_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or ``*.`` covering exactly one left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)
    return False


def covers(cert: x509.Certificate, host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    names = sans(cert)
    if ip is not None:
        return str(ip) in names
    return any(host_matches(n, host) for n in names if not _is_ip(n))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_to(leaf: x509.Certificate, intermediates: list[x509.Certificate],
             ca: x509.Certificate) -> list[str]:
    """Subjects from the leaf up to the CA; raises if no path leads to the CA."""
    path, current, pool = [leaf], leaf, list(intermediates)
    while not _issued_by(current, ca):
        nxt = next((c for c in pool if _issued_by(current, c)), None)
        if nxt is None:
            raise HomeciError(
                f"certificate {leaf.subject.rfc4514_string()} (issuer {current.issuer.rfc4514_string()}) "
                f"does not chain to the CA {ca.subject.rfc4514_string()} [{fingerprint(ca)[:23]}...]; "
                "serve a certificate signed by this CA or pass the right --ca"
            )
        pool.remove(nxt)
        path.append(nxt)
        current = nxt
    return [c.subject.rfc4514_string() for c in [*path, ca]]


def check(chain: list[x509.Certificate], ca: x509.Certificate, host: str, source: str) -> str:
    """Verify a served/filed chain against the CA and ``host``; the success line, or a HomeciError."""
    leaf, rest = chain[0], chain[1:]
    now = _now()
    for c in (leaf, ca):
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise HomeciError(f"{source}: {c.subject.rfc4514_string()} is valid only from "
                              f"{c.not_valid_before_utc:%Y-%m-%d} to {c.not_valid_after_utc:%Y-%m-%d}; "
                              "reissue it")
    path = chain_to(leaf, rest, ca)
    refused = outside_constraints(leaf, ca)
    if refused:
        raise HomeciError(f"{source}: the CA's name constraints ({constraints_text(ca)}) do not permit "
                          f"{', '.join(refused)}, so clients refuse the certificate; issue it only for names "
                          "the CA permits, or use a CA made for them")
    if not covers(leaf, host):
        names = ", ".join(sans(leaf)) or "none"
        raise HomeciError(f"{source}: certificate does not cover {host} (subject alt names: {names}); "
                          f"reissue it with {host} (or a matching *. name) in its SANs")
    return (f"OK: {source} chains to {ca.subject.rfc4514_string()} (chain: {' -> '.join(path)}) and "
            f"covers {host}; valid until {leaf.not_valid_after_utc:%Y-%m-%d}")


def parse_target(target: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` too) → (host, port); a path (or anything else) → None."""
    if Path(target).exists():
        return None
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"{target}: port {port} is out of range (1-65535); give HOST:PORT or a "
                         "certificate file")
    return host.strip("[]"), int(port)


def fetch_chain(host: str, port: int, sni: str, timeout: float = 10) -> list[x509.Certificate]:
    """The certificates a TLS server presents for ``sni`` (not verified here)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=sni) as tls:
            chain_fn = getattr(tls, "get_unverified_chain", None)  # Python >= 3.13
            if chain_fn is not None:
                ders = [c if isinstance(c, bytes) else ssl.PEM_cert_to_DER_cert(str(c)) for c in chain_fn()]
            else:
                leaf = tls.getpeercert(binary_form=True)
                ders = [leaf] if leaf else []
    except (OSError, ssl.SSLError) as exc:
        raise HomeciError(f"{host}:{port}: TLS connection failed ({exc}); check the address and that it "
                          "serves TLS") from None
    if not ders:
        raise HomeciError(f"{host}:{port}: the server presented no certificate")
    return [x509.load_der_x509_certificate(d) for d in ders]


def handshake_verifies(host: str, port: int, sni: str, ca_file: Path, timeout: float = 10) -> None:
    """A real verifying handshake (OpenSSL: chain + hostname), as clients will do it."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=sni):
            return
    except ssl.SSLCertVerificationError as exc:
        raise HomeciError(f"{host}:{port}: a verifying TLS client rejects it for {sni}: "
                          f"{exc.verify_message}") from None
    except (OSError, ssl.SSLError) as exc:
        raise HomeciError(f"{host}:{port}: TLS connection failed ({exc})") from None


def verify(target: str, ca_file: Path, host: str) -> str:
    """``homeci ca verify``: a certificate file or a ``host:port`` against the CA and a hostname."""
    cas = load_certs(ca_file)
    ca = cas[0]
    if not is_ca(ca):
        raise HomeciError(f"{ca_file}: {ca.subject.rfc4514_string()} is not a CA certificate; pass the CA's "
                          "ca.crt as --ca")
    address = parse_target(target)
    if address is None:
        chain = load_certs(Path(target))
        return check(chain, ca, host, target)
    chain = fetch_chain(*address, sni=host)
    line = check(chain, ca, host, target)
    handshake_verifies(*address, sni=host, ca_file=ca_file)
    return line
