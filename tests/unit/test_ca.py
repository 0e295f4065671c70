"""``homeci ca init|show|verify``: a real CA, real certificates, a real TLS server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from homeci import ca, manifests
from homeci.errors import HomeciError
from homeci.helm import Helm
from homeci_testing.loopback import json_handler, serve
from homeci_testing.support import ROOT


def homeci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=120)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca") / "homeci-ca"
    proc = homeci("ca", "init", str(directory), "--cn", "Test Lab CA", "--domain", "lab.test",
                  "--ip", "127.0.0.1")
    assert proc.returncode == 0, proc.stderr
    (directory / "init.out").write_text(proc.stdout)
    return directory


def _ca(ca_dir: Path) -> tuple[x509.Certificate, ca.rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ca.rsa.RSAPrivateKey)
    return cert, key


def _write(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(ca.cert_pem(c) for c in certs))
    return path


# -- init ------------------------------------------------------------------------------------------


def test_init_writes_a_ten_year_ca_with_a_private_key(ca_dir: Path) -> None:
    cert, key = _ca(ca_dir)
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert (ca_dir / "ca.key").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")  # PKCS#1
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Test Lab CA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3650) <= lifetime <= dt.timedelta(days=3651)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_init_prints_the_exact_commands(ca_dir: Path) -> None:
    out = (ca_dir / "init.out").read_text()
    assert (f"kubectl create secret tls homeci-ca --cert={ca_dir}/ca.crt --key={ca_dir}/ca.key -n homeci"
            in out)
    assert ("helm install homeci charts/homeci-umbrella -n homeci --create-namespace "
            "--set global.tls.mode=existingSecret --set global.tls.existingSecret=homeci-ca "
            "--set global.domain=lab.test --set certificates.extraIpAddresses={127.0.0.1}") in out
    assert "name constraints: permitted DNS:lab.test, IP:127.0.0.1/32; excluded IP:::/0" in out


def test_init_writes_name_constraints(ca_dir: Path) -> None:
    """The CA vouches for --domain (and subdomains) and --ip only: every other name and address is refused."""
    cert, _ = _ca(ca_dir)
    ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical, "nameConstraints must be critical (RFC 5280)"
    assert [str(n.value) for n in ext.value.permitted_subtrees or []] == ["lab.test", "127.0.0.1/32"]
    assert [str(n.value) for n in ext.value.excluded_subtrees or []] == ["::/0"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


@pytest.mark.parametrize(("names", "accepted"), [
    (["git.lab.test", "127.0.0.1"], True),
    (["example.com"], False),
    (["git.lab.test.example.com"], False),
    (["10.0.0.1"], False),
])
def test_a_leaf_outside_the_constraints_is_refused(ca_dir: Path, tmp_path: Path, names: list[str],
                                                   accepted: bool) -> None:
    """As whoever holds the key would sign it: `openssl verify` and `homeci ca verify` agree."""
    cert, key = _ca(ca_dir)
    leaf_file = _write(tmp_path / "leaf.crt", ca.issue(cert, key, names)[0])
    proc = subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "ca.crt"), str(leaf_file)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode == 0) == accepted, f"openssl verify for {names}: {proc.stdout}{proc.stderr}"
    if accepted:
        assert ca.verify(str(leaf_file), ca_dir / "ca.crt", names[0]).startswith("OK: ")
        return
    assert "subtree violation" in proc.stdout + proc.stderr
    with pytest.raises(HomeciError, match=rf"constraints .* do not permit {names[0]}, so clients refuse"):
        ca.verify(str(leaf_file), ca_dir / "ca.crt", names[0])


def test_show_says_whether_a_ca_is_name_constrained(ca_dir: Path, tmp_path: Path) -> None:
    proc = homeci("ca", "show", str(ca_dir / "ca.crt"))
    assert "name constraints: permitted DNS:lab.test, IP:127.0.0.1/32; excluded IP:::/0" in proc.stdout
    plain, _ = ca.new_ca("Old CA", days=1, constrained=False)
    proc = homeci("ca", "show", str(_write(tmp_path / "plain.crt", plain)))
    assert "name constraints: none: trusting it trusts it for every site" in proc.stdout, proc.stdout


def test_init_refuses_to_overwrite(ca_dir: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes()
    proc = homeci("ca", "init", str(ca_dir))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"homeci: error: {ca_dir} already holds ca.crt and ca.key: refusing to overwrite a CA; choose an "
        "empty directory (or move the old files away yourself)")
    assert (ca_dir / "ca.key").read_bytes() == before


def test_init_refuses_when_only_the_certificate_exists(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("old")
    with pytest.raises(HomeciError, match=r"already holds ca\.crt: refusing to overwrite"):
        ca.init(tmp_path)
    assert not (tmp_path / "ca.key").exists()


def test_init_refuses_a_directory_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    proc = homeci("ca", "init", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"homeci: error: {tmp_path} is not empty (it holds notes.txt): give a new "
                                   "or empty directory, so the CA key sits in a directory of its own")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_fills_an_existing_empty_directory(tmp_path: Path) -> None:
    files = ca.init(tmp_path, days=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key"]  # no staging left behind
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert ca.is_ca(ca.load_certs(files.cert)[0])


@pytest.mark.parametrize("existing", [False, True], ids=["new-directory", "empty-directory"])
def test_init_writes_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    """A failure while the files go into place leaves neither file (nor the staging directory) behind."""
    target = tmp_path / "ca"
    if existing:
        target.mkdir()
        real_link = os.link
        calls: list[str] = []

        def link_then_fail(src: str, dst: str) -> None:
            calls.append(dst)
            if len(calls) == 2:
                raise OSError(28, "No space left on device", str(dst))
            real_link(src, dst)

        monkeypatch.setattr(os, "link", link_then_fail)
    else:
        def rename_fails(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device", str(dst))

        monkeypatch.setattr(os, "rename", rename_fails)
    with pytest.raises(HomeciError) as exc:
        ca.init(target, days=2)
    assert str(exc.value) == (f"{target}: cannot write the CA (No space left on device); nothing was "
                              "written, check permissions and free space")
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["ca"] if existing else [])


def test_init_interrupted_half_way_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_link = os.link

    def interrupted(src: str, dst: str) -> None:
        if Path(dst).name == ca.CERT_FILE:  # the key is already in place
            raise KeyboardInterrupt
        real_link(src, dst)

    monkeypatch.setattr(os, "link", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ca.init(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "expected"), [
    (["--cn", ""], "--cn '': a common name has 1 to 64 characters"),
    (["--cn", "x" * 65], "a common name has 1 to 64 characters"),
    (["-n", "Bad NS"], "'-n' / '--namespace': 'Bad NS' is not a valid name"),
    (["--days", "0"], "'--days': 0 is not in the range 1<=x<=36500"),
])
def test_init_refuses_bad_options_before_writing(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = homeci("ca", "init", str(tmp_path / "ca"), *args)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr
    assert not (tmp_path / "ca").exists()


def test_helm_genSignedCert_accepts_the_ca(ca_dir: Path, tmp_path: Path) -> None:
    """The umbrella signs its serving certificate with this CA through sprig; prove Helm can."""
    chart = tmp_path / "signer"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: signer\nversion: 0.1.0\n")
    (chart / "templates" / "cert.yaml").write_text(
        '{{- $ca := buildCustomCert (.Values.crt | b64enc) (.Values.key | b64enc) -}}\n'
        '{{- $c := genSignedCert "git.lab.test" nil (list "git.lab.test") 30 $ca -}}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: signed}\n"
        "data:\n  tls.crt: {{ $c.Cert | quote }}\n")
    values = tmp_path / "values.yaml"
    pair = {"crt": (ca_dir / "ca.crt").read_text(), "key": (ca_dir / "ca.key").read_text()}
    values.write_text(json.dumps(pair))
    out = Helm(3).template(chart, values_files=[values], kube_version="1.33.0")
    leaf = manifests.get(manifests.parse(out), "ConfigMap", "signed").obj["data"]["tls.crt"]
    leaf_file = tmp_path / "leaf.crt"
    leaf_file.write_text(leaf)
    assert ca.verify(str(leaf_file), ca_dir / "ca.crt", "git.lab.test").startswith("OK: ")


def test_issue_with_a_ca_helm_generated_chains_in_openssl(tmp_path: Path) -> None:
    """A CA from Helm's genCA (an upgraded stack keeps the one its first version made) carries a subject
    key identifier Go computes its own way (truncated SHA-256 since Go 1.25): a leaf issued with it must
    name that identifier, or OpenSSL cannot find the issuer (what the day-two tier met on the real node)."""
    chart = tmp_path / "genca"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: genca\nversion: 0.1.0\n")
    (chart / "templates" / "ca.yaml").write_text(
        '{{- $ca := genCA "helm CA" 30 -}}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\n"
        "data:\n  tls.crt: {{ $ca.Cert | quote }}\n  tls.key: {{ $ca.Key | quote }}\n")
    data = manifests.get(manifests.parse(Helm(3).template(chart, kube_version="1.33.0")), "ConfigMap",
                         "ca").obj["data"]
    ca_cert = x509.load_pem_x509_certificate(data["tls.crt"].encode())
    ca_key = serialization.load_pem_private_key(data["tls.key"].encode(), password=None)
    assert isinstance(ca_key, ca.rsa.RSAPrivateKey)
    leaf = ca.issue(ca_cert, ca_key, ["git.lab.test"])
    ca_file = _write(tmp_path / "helm-ca.crt", ca_cert)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    with tls_server(*leaf, tmp_path) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="git.lab.test") as tls:
        assert tls.getpeercert(), "OpenSSL verified the leaf against Helm's CA"


# -- show ------------------------------------------------------------------------------------------


def test_show_prints_subject_fingerprint_and_validity(ca_dir: Path) -> None:
    cert, _ = _ca(ca_dir)
    proc = homeci("ca", "show", str(ca_dir / "ca.crt"))
    assert proc.returncode == 0, proc.stderr
    assert "O=homeci,CN=Test Lab CA" in proc.stdout
    assert cert.fingerprint(ca.hashes.SHA256()).hex(":").upper() in proc.stdout
    assert f"{cert.not_valid_after_utc:%Y-%m-%d}" in proc.stdout
    assert "valid; 36" in proc.stdout  # 3649 or 3650 days left


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
         "not a PEM or DER certificate (corrupt or wrong file)"),
        (b"\x00\x01garbage", "not a PEM or DER certificate (corrupt or wrong file)"),
        (b"", "not a PEM or DER certificate"),
    ],
)
def test_show_corrupt_file(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_bytes(content)
    proc = homeci("ca", "show", str(bad))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"homeci: error: {bad}: {expected}")
    assert "homeci ca init" in lines[0]


def test_show_unreadable_paths(tmp_path: Path) -> None:
    proc = homeci("ca", "show", str(tmp_path / "missing.crt"))
    assert proc.stderr.strip() == (f"homeci: error: ca show: Invalid value for '[FILE]': File "
                                   f"'{tmp_path}/missing.crt' does not exist. (see `homeci ca show --help`)")
    proc = homeci("ca", "show", str(tmp_path))
    assert proc.stderr.strip() == (f"homeci: error: ca show: Invalid value for '[FILE]': File '{tmp_path}' "
                                   "is a directory. (see `homeci ca show --help`)")
    assert proc.returncode == 2


def test_load_certs_names_missing_files_and_directories(tmp_path: Path) -> None:
    """``ca verify TARGET`` may be a file or HOST:PORT, so the library names bad paths itself."""
    with pytest.raises(HomeciError, match=f"^{tmp_path}/missing.crt: no such file; check the path$"):
        ca.load_certs(tmp_path / "missing.crt")
    with pytest.raises(HomeciError, match=f"^{tmp_path}: is a directory; give the certificate file"):
        ca.load_certs(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_show_file_without_read_permission(ca_dir: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.crt"
    locked.write_bytes((ca_dir / "ca.crt").read_bytes())
    locked.chmod(0)
    proc = homeci("ca", "show", str(locked))
    expected = f"homeci: error: {locked}: cannot read it (Permission denied); check its permissions"
    assert proc.stderr.strip() == expected


def test_unreadable_file_message(ca_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same path as above for root (who may read anything): the OS refusing the read."""

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(HomeciError) as exc:
        ca.load_certs(ca_dir / "ca.crt")
    assert str(exc.value) == f"{ca_dir}/ca.crt: cannot read it (Permission denied); check its permissions"


def test_show_needs_exactly_one_source() -> None:
    proc = homeci("ca", "show")
    assert proc.returncode == 2
    assert "give exactly one of FILE or --secret NAME" in proc.stderr


@contextmanager
def fake_apiserver(secrets: dict[str, dict[str, str]]) -> Iterator[str]:
    """A tiny Kubernetes API on 127.0.0.1 serving GET .../namespaces/<ns>/secrets/<name>."""

    def handle(method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        key = f"{parts[3]}/{parts[5]}" if len(parts) == 6 and parts[4] == "secrets" else ""
        if key in secrets:
            return 200, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": parts[5], "namespace": parts[3]}, "data": secrets[key]}
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                     "code": 404, "message": "not found"}

    with serve(json_handler(handle, ("GET",))) as port:
        yield f"http://127.0.0.1:{port}"


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": url}}],
        "users": [{"name": "t", "user": {"token": "x"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }))
    return path


def test_show_from_cluster_secret(ca_dir: Path, tmp_path: Path) -> None:
    crt = base64.b64encode((ca_dir / "ca.crt").read_bytes()).decode()
    with fake_apiserver({"homeci/homeci-ca": {"tls.crt": crt, "tls.key": "eA=="}}) as url:
        kubeconfig = _kubeconfig(tmp_path, url)
        proc = homeci("ca", "show", "--secret", "homeci-ca", "-n", "homeci", "--kubeconfig", str(kubeconfig))
        assert proc.returncode == 0, proc.stderr
        assert "secret homeci/homeci-ca" in proc.stdout and "CN=Test Lab CA" in proc.stdout
        proc = homeci("ca", "show", "--secret", "nope", "--kubeconfig", str(kubeconfig))
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("homeci: error: secret homeci/nope not found: create it with")


# -- verify ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leaf(ca_dir: Path) -> tuple[x509.Certificate, ca.rsa.RSAPrivateKey]:
    cert, key = _ca(ca_dir)
    return ca.issue(cert, key, ["git.lab.test", "*.lab.test", "127.0.0.1"])


@pytest.mark.parametrize("host", ["git.lab.test", "app.lab.test", "127.0.0.1", "GIT.LAB.TEST"])
def test_verify_file_covering_host(ca_dir: Path, leaf: tuple[x509.Certificate, object], tmp_path: Path,
                                   host: str) -> None:
    cert_file = _write(tmp_path / "leaf.crt", leaf[0])
    proc = homeci("ca", "verify", str(cert_file), "--ca", str(ca_dir / "ca.crt"), "--host", host)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"OK: {cert_file} chains to O=homeci,CN=Test Lab CA")


@pytest.mark.parametrize("host", ["a.b.lab.test", "lab.test", "git.other.test", "127.0.0.2"])
def test_verify_file_not_covering_host(ca_dir: Path, leaf: tuple[x509.Certificate, object], tmp_path: Path,
                                       host: str) -> None:
    cert_file = _write(tmp_path / "leaf.crt", leaf[0])
    with pytest.raises(HomeciError) as exc:
        ca.verify(str(cert_file), ca_dir / "ca.crt", host)
    assert str(exc.value) == (f"{cert_file}: certificate does not cover {host} (subject alt names: "
                              f"git.lab.test, *.lab.test, 127.0.0.1); reissue it with {host} (or a "
                              "matching *. name) in its SANs")


def test_verify_rejects_certificate_from_another_ca(ca_dir: Path, tmp_path: Path) -> None:
    other_ca, other_key = ca.new_ca("Other CA")
    stranger, _ = ca.issue(other_ca, other_key, ["git.lab.test"])
    cert_file = _write(tmp_path / "stranger.crt", stranger)
    with pytest.raises(HomeciError, match=r"does not chain to the CA O=homeci,CN=Test Lab CA"):
        ca.verify(str(cert_file), ca_dir / "ca.crt", "git.lab.test")


def test_verify_follows_intermediates_in_the_file(tmp_path: Path) -> None:
    root, root_key = ca.new_ca("Root", domain="test")
    inter, inter_key = ca.new_ca("Intermediate", domain="test")
    # re-sign the intermediate by the root
    inter = (x509.CertificateBuilder().subject_name(inter.subject).issuer_name(root.subject)
             .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(inter.not_valid_before_utc).not_valid_after(inter.not_valid_after_utc)
             .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
             .sign(root_key, ca.hashes.SHA256()))
    leaf_cert, _ = ca.issue(inter, inter_key, ["x.test"])
    chain = _write(tmp_path / "chain.crt", leaf_cert, inter)
    root_file = _write(tmp_path / "root.crt", root)
    line = ca.verify(str(chain), root_file, "x.test")
    assert "(chain: CN=x.test -> O=homeci,CN=Intermediate -> O=homeci,CN=Root)" in line


def test_verify_expired_certificate(ca_dir: Path, tmp_path: Path) -> None:
    cert, key = _ca(ca_dir)
    old, _ = ca.issue(cert, key, ["git.lab.test"], days=1,
                      not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    with pytest.raises(HomeciError, match=r"CN=git\.lab\.test is valid only from .*; reissue it"):
        ca.verify(str(_write(tmp_path / "old.crt", old)), ca_dir / "ca.crt", "git.lab.test")


def test_verify_needs_a_ca_as_ca(ca_dir: Path, leaf: tuple[x509.Certificate, object], tmp_path: Path) -> None:
    leaf_file = _write(tmp_path / "leaf.crt", leaf[0])
    with pytest.raises(HomeciError, match=r"is not a CA certificate; pass the CA's ca\.crt as --ca"):
        ca.verify(str(leaf_file), leaf_file, "git.lab.test")


@contextmanager
def tls_server(cert: x509.Certificate, key: ca.rsa.RSAPrivateKey, tmp_path: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that completes handshakes until stopped."""
    cert_file = _write(tmp_path / "server.crt", cert)
    key_file = tmp_path / "server.key"
    key_file.write_bytes(ca.key_pem(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_verify_live_server(ca_dir: Path, leaf: tuple[x509.Certificate, ca.rsa.RSAPrivateKey],
                            tmp_path: Path) -> None:
    with tls_server(*leaf, tmp_path) as port:
        target = f"127.0.0.1:{port}"
        proc = homeci("ca", "verify", target, "--ca", str(ca_dir / "ca.crt"), "--host", "registry.lab.test")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"OK: {target} chains to O=homeci,CN=Test Lab CA")
        proc = homeci("ca", "verify", target, "--ca", str(ca_dir / "ca.crt"), "--host", "registry.example")
        assert proc.returncode == 1
        assert "certificate does not cover registry.example" in proc.stderr


def test_verify_live_server_with_foreign_certificate(ca_dir: Path, tmp_path: Path) -> None:
    other_ca, other_key = ca.new_ca("Other CA")
    foreign = ca.issue(other_ca, other_key, ["git.lab.test"])
    with tls_server(*foreign, tmp_path) as port, \
            pytest.raises(HomeciError, match=r"does not chain to the CA O=homeci,CN=Test Lab CA"):
        ca.verify(f"127.0.0.1:{port}", ca_dir / "ca.crt", "git.lab.test")


def test_verify_unreachable_port(ca_dir: Path) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(HomeciError, match=rf"^127\.0\.0\.1:{port}: TLS connection failed"):
        ca.verify(f"127.0.0.1:{port}", ca_dir / "ca.crt", "git.lab.test")
