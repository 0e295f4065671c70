"""The node-trust DaemonSet script (charts/homeci-umbrella/files/node-trust.py): writes containerd's
hosts.toml + CA and the step CA file, atomically and only on change (safe every resync), reads the CA
ConfigMap through the API with the pod's token, and reports failures without writing anything."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.loopback import serve
from homeci_testing.support import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "charts" / "homeci-umbrella" / "files" / "node-trust.py"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"
HOST = "registry.homeci.localhost"


nt = load_script(SCRIPT, "homeci_node_trust")


@pytest.fixture
def node(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "registry").mkdir()
    (tmp_path / "ca").mkdir()
    return {
        "CA_NAMESPACE": "homeci",
        "CA_CONFIGMAP": "homeci-ca",
        "REGISTRY_HOST": HOST,
        "NODE_CERTS_DIR": f"/etc/containerd/certs.d/{HOST}",
        "CERTS_DIR": str(tmp_path / "registry"),
        "CA_DIR": str(tmp_path / "ca"),
    }


def test_hosts_toml() -> None:
    doc = tomllib.loads(nt.hosts_toml(HOST, f"/etc/containerd/certs.d/{HOST}/ca.crt"))
    assert doc["server"] == f"https://{HOST}"
    assert doc["host"][f"https://{HOST}"] == {
        "capabilities": ["pull", "resolve"],
        "ca": f"/etc/containerd/certs.d/{HOST}/ca.crt",
    }
    mirror = tomllib.loads(nt.hosts_toml(HOST, "/x/ca.crt", "https://10.0.0.5:443"))
    assert list(mirror["host"]) == ["https://10.0.0.5:443"]


def test_sync_writes_then_is_idempotent(node: dict[str, str]) -> None:
    changed, removed = nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert len(changed) == 4 and removed == []
    reg, ca = Path(node["CERTS_DIR"]), Path(node["CA_DIR"])
    assert (reg / "ca.crt").read_text() == PEM + "\n" == (ca / "ca.crt").read_text()
    toml = tomllib.loads((reg / "hosts.toml").read_text())
    assert toml["host"][f"https://{HOST}"]["ca"] == f"/etc/containerd/certs.d/{HOST}/ca.crt"
    assert oct((ca / "ca.crt").stat().st_mode & 0o777) == "0o644"
    again = nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert again == ([], []), "an unchanged CA must not rewrite files"
    assert not list(reg.glob(".*.tmp")), "temporary files left behind"


def test_sync_follows_a_new_ca(node: dict[str, str]) -> None:
    nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    new = PEM.replace("fake", "rotated") + "\n"
    changed, _ = nt.sync(node, fetch=lambda ns, name: new)
    assert sorted(Path(p).name for p in changed) == ["bundle.crt", "ca.crt", "ca.crt"]
    assert (Path(node["CA_DIR"]) / "ca.crt").read_text() == new


@pytest.mark.parametrize("folder", ["CA_DIR", "CERTS_DIR"])
def test_repairs_what_a_step_could_plant(node: dict[str, str], tmp_path: Path, folder: str) -> None:
    """What a pipeline step with the node directory mounted read-write (hostPath delivery) could do to
    change what builds or containerd trust: every pass undoes it and says so."""
    d = Path(node[folder])
    nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    evil = tmp_path / "evil.pem"
    evil.write_text(PEM + "\n")  # same content: a link that only later changes its target
    (d / "ca.crt").unlink()
    (d / "ca.crt").symlink_to(evil)
    (d / "extra.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIattacker\n-----END CERTIFICATE-----\n")
    (d / "certs").mkdir()
    (d / "certs" / "x.pem").write_text("x")
    for f in d.glob("*.toml"):
        f.chmod(0o666)
    changed, removed = nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert sorted(Path(r).name for r in removed) == ["certs", "extra.crt"], f"removed {removed}"
    assert str(d / "ca.crt") in changed, "a symbolic link in place of ca.crt must be replaced"
    assert (d / "ca.crt").is_file() and not (d / "ca.crt").is_symlink()
    assert sorted(e.name for e in d.iterdir()) == sorted(
        ["ca.crt", "bundle.crt"] if folder == "CA_DIR" else ["ca.crt", "hosts.toml"])
    assert all(oct(e.stat().st_mode & 0o777) == "0o644" for e in d.iterdir()), "modes restored to 0644"
    assert evil.read_text() == PEM + "\n", "the link's target outside the directory is left alone"


def test_replaces_a_directory_in_the_way(node: dict[str, str]) -> None:
    """A directory (empty or not) where ca.crt belongs would wedge every later pass; it is replaced."""
    (Path(node["CA_DIR"]) / "ca.crt").mkdir()
    (Path(node["CA_DIR"]) / "ca.crt" / "inner").write_text("x")
    nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert (Path(node["CA_DIR"]) / "ca.crt").read_text() == PEM + "\n"


def test_without_a_step_directory_only_containerd_is_kept(node: dict[str, str]) -> None:
    """Admission-policy delivery: node-trust keeps containerd's directory and nothing else."""
    ca_dir = Path(node.pop("CA_DIR"))
    changed, _ = nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert sorted(Path(p).name for p in changed) == ["ca.crt", "hosts.toml"]
    assert list(ca_dir.iterdir()) == []


def test_bundle_has_public_roots_then_the_ca(node: dict[str, str], tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_text("-----BEGIN CERTIFICATE-----\nMIIpublic\n-----END CERTIFICATE-----")
    node["SYSTEM_BUNDLE"] = str(roots)
    nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    text = (Path(node["CA_DIR"]) / "bundle.crt").read_text()
    assert text == roots.read_text() + "\n" + PEM + "\n"
    node["SYSTEM_BUNDLE"] = str(tmp_path / "missing.pem")  # no public roots: the CA alone, still valid
    nt.sync(node, fetch=lambda ns, name: PEM + "\n")
    assert (Path(node["CA_DIR"]) / "bundle.crt").read_text() == PEM + "\n"


def test_health_files(tmp_path: Path) -> None:
    nt.mark_health(tmp_path, True)
    assert (tmp_path / "ready").exists() and (tmp_path / "heartbeat").exists()
    nt.mark_health(tmp_path, False)
    assert not (tmp_path / "ready").exists() and (tmp_path / "heartbeat").exists()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    responses: dict[str, tuple[int, Any]] = {
        "/api/v1/namespaces/homeci/configmaps/homeci-ca": (
            200,
            {"kind": "ConfigMap", "data": {"ca.crt": PEM}},
        ),
        "/api/v1/namespaces/homeci/configmaps/empty": (200, {"kind": "ConfigMap", "data": {}}),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
            status, body = responses.get(self.path, (404, {"kind": "Status", "code": 404}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("pod-token\n")
    with serve(Handler) as port:
        yield f"http://127.0.0.1:{port}", sa, seen


def test_fetch_ca_uses_the_pod_token(api: tuple[str, Path, list[dict[str, Any]]]) -> None:
    url, sa, seen = api
    assert nt.fetch_ca("homeci", "homeci-ca", api=url, sa_dir=sa) == PEM + "\n"
    assert seen == [{"path": "/api/v1/namespaces/homeci/configmaps/homeci-ca", "auth": "Bearer pod-token"}]


def test_fetch_ca_errors_name_the_configmap(api: tuple[str, Path, list[dict[str, Any]]]) -> None:
    url, sa, _ = api
    with pytest.raises(nt.NodeTrustError, match="homeci/missing"):
        nt.fetch_ca("homeci", "missing", api=url, sa_dir=sa)
    with pytest.raises(nt.NodeTrustError, match=r"no PEM certificate under key ca\.crt"):
        nt.fetch_ca("homeci", "empty", api=url, sa_dir=sa)


def test_failed_fetch_writes_nothing(node: dict[str, str]) -> None:
    def broken(ns: str, name: str) -> str:
        raise nt.NodeTrustError("cannot read ConfigMap homeci/homeci-ca: refused")

    with pytest.raises(nt.NodeTrustError):
        nt.sync(node, fetch=broken)
    assert not list(Path(node["CERTS_DIR"]).iterdir()) and not list(Path(node["CA_DIR"]).iterdir())
