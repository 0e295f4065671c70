"""`homeci node-config`: containerd hosts.toml and k3s registries.yaml for the registry host taken from
flags or an umbrella values file; one-line errors for bad input; --ca checks the CA file."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homeci.commands import node_config as nodeconfig
from homeci_testing.support import run_cli


def sections(text: str) -> tuple[str, str]:
    """(hosts.toml body, registries.yaml body) from the default output (both formats)."""
    toml_part, _, rest = text.partition("# k3s:")
    return toml_part, "# k3s:" + rest


def test_defaults() -> None:
    code, out, _ = run_cli("node-config", cwd=None)
    assert code == 0
    toml_text, yaml_text = sections(out)
    doc = tomllib.loads(toml_text)
    host = "registry.homeci.localhost"
    assert doc["server"] == f"https://{host}"
    assert doc["host"][f"https://{host}"]["ca"] == f"/etc/containerd/certs.d/{host}/ca.crt"
    assert doc["host"][f"https://{host}"]["capabilities"] == ["pull", "resolve"]
    reg = yaml.safe_load(yaml_text)
    assert reg["mirrors"][host]["endpoint"] == [f"https://{host}"]
    assert reg["configs"][host]["tls"]["ca_file"] == "/etc/rancher/k3s/homeci-ca.crt"
    assert f"/etc/containerd/certs.d/{host}/hosts.toml" in out and "resolve registry.homeci.localhost" in out


def test_domain_and_ca_path() -> None:
    code, out, _ = run_cli("node-config", "--domain", "home.example", "--ca-path", "/etc/ssl/homeci.crt",
                           "--containerd", cwd=None)
    assert code == 0 and "# k3s:" not in out
    doc = tomllib.loads(out)
    assert doc["host"]["https://registry.home.example"]["ca"] == "/etc/ssl/homeci.crt"


def test_values_file(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("global:\n  domain: lab.example.net\n  hosts:\n    registry: images\n")
    code, out, _ = run_cli("node-config", "-f", str(values), "--k3s", cwd=None)
    assert code == 0
    reg = yaml.safe_load(out)
    assert list(reg["mirrors"]) == ["images.lab.example.net"]


def test_values_file_matches_the_chart_scenario() -> None:
    scenario = Path(__file__).resolve().parents[2] / "charts/homeci-umbrella/ci/k3s-coredns-values.yaml"
    code, out, _ = run_cli("node-config", "-f", str(scenario), "--containerd", cwd=None)
    assert code == 0 and '"https://registry.home.example.test"' in out


def test_endpoint() -> None:
    code, out, _ = run_cli("node-config", "--endpoint", "https://10.0.0.5:443", "--containerd", cwd=None)
    assert code == 0
    assert list(tomllib.loads(out)["host"]) == ["https://10.0.0.5:443"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k3s", "--containerd"], "--k3s and --containerd exclude each other"),
        (["--domain", "bad_domain"], "not a DNS name"),
        (["--registry-host", "registry.x.test:99999"], "port 99999 is out of range (1-65535)"),
        (["-f", "/nonexistent/values.yaml"],
         "'-f' / '--values': File '/nonexistent/values.yaml' does not exist"),
        (["--ca-path", "relative/ca.crt"], "give an absolute path"),
        (["--endpoint", "ftp://x"], "--endpoint 'ftp://x'"),
        (["--ca", "/nonexistent/ca.crt"], "'--ca': File '/nonexistent/ca.crt' does not exist"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str) -> None:
    code, out, err = run_cli("node-config", *args, cwd=None)
    assert code == 2 and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def _cert(tmp_path: Path, *, ca: bool) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homeci test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / ("ca.crt" if ca else "leaf.crt")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_ca_file_is_checked(tmp_path: Path) -> None:
    ca = _cert(tmp_path, ca=True)
    code, out, _ = run_cli("node-config", "--ca", str(ca), "--containerd", cwd=None)
    assert code == 0 and f"install -D -m 0644 {ca} " in out
    leaf = _cert(tmp_path, ca=False)
    code, _, err = run_cli("node-config", "--ca", str(leaf), cwd=None)
    assert code == 2 and "not a CA" in err
    junk = tmp_path / "junk.crt"
    junk.write_text("hello")
    code, _, err = run_cli("node-config", "--ca", str(junk), cwd=None)
    assert code == 2 and "no PEM certificate" in err


def test_pure_functions_agree_with_the_daemonset_format() -> None:
    # The manual files must mean exactly what the node-trust DaemonSet writes.
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "charts/homeci-umbrella/files/node-trust.py"
    spec = importlib.util.spec_from_file_location("homeci_node_trust_cmp", script)
    assert spec and spec.loader
    daemonset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(daemonset)
    args = ("registry.x.test", "/etc/containerd/certs.d/registry.x.test/ca.crt")
    text = nodeconfig.hosts_toml(*args)
    assert tomllib.loads(text) == tomllib.loads(daemonset.hosts_toml(*args))
    assert tomllib.loads(text) == {
        "server": "https://registry.x.test",
        "host": {
            "https://registry.x.test": {
                "capabilities": ["pull", "resolve"],
                "ca": "/etc/containerd/certs.d/registry.x.test/ca.crt",
            }
        },
    }


@pytest.mark.parametrize("flag", ["--ca", "-f"])
def test_binary_files_get_one_line_not_a_traceback(flag: str, tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\xff\xfe\x80 not text")
    code, _, err = run_cli("node-config", flag, str(binary), cwd=None)
    assert code == 2, f"node-config {flag} <binary file>: exit {code}, stderr {err!r}"
    assert "not a text file" in err and str(binary) in err and "Traceback" not in err, err
