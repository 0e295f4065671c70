"""`homeci package --sign-key`: a maintainer's signing run from the command line, and its rerun no-op."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from homeci import signing
from homeci.helm import Helm
from homeci_testing.chartrepo import ROOT, need_gpg

GOOD = ROOT / "tests" / "fixtures" / "charts" / "good"


def _homeci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=300)


def test_signed_packaging_from_the_cli_and_its_noop_rerun(tmp_path: Path) -> None:
    need_gpg()
    dest = tmp_path / "site"
    with signing.throwaway_gpg_key(tmp_path) as key:
        args = ("package", str(GOOD), "--dest", str(dest), "--repo-url", "https://charts.example.org/homeci",
                "--sign-key", key.key_id, "--gnupghome", str(key.home))
        first = _homeci(*args)
        assert first.returncode == 0, first.stderr
        assert f"provenance signed by OpenPGP key {key.key_id}" in first.stdout, first.stdout
        keyring = signing.Gpg(key.home).export_public(key.key_id, tmp_path / "pub.gpg")
        files = {p.name: p.read_bytes() for p in dest.iterdir()}
        second = _homeci(*args)
        assert second.returncode == 0, second.stderr
    assert sorted(files) == ["artifacthub-repo.yml", "good-0.1.0.tgz", "good-0.1.0.tgz.prov", "index.yaml"]
    assert files["artifacthub-repo.yml"] == (ROOT / "artifacthub-repo.yml").read_bytes()
    assert "Chart Hash Verified" in Helm(3).verify(dest / "good-0.1.0.tgz", keyring)
    rewritten = sorted(p.name for p in dest.iterdir() if files.get(p.name) != p.read_bytes())
    assert not rewritten, f"a rerun with the same content rewrote {rewritten}"


def test_sign_options_without_a_key_are_refused(tmp_path: Path) -> None:
    proc = _homeci("package", str(GOOD), "--gnupghome", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "homeci: error: --gnupghome/--passphrase-file belong to --sign-key: name the key with --sign-key"), \
        proc.stderr


def test_cosign_key_without_oci_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "cosign.key"
    key.write_text("x")
    proc = _homeci("package", str(GOOD), "--cosign-key", str(key))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "homeci: error: --cosign-key signs what --oci pushes: add --oci oci://HOST/PATH"), proc.stderr
