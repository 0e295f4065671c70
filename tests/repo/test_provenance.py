"""Provenance files: homeci signs the deterministic archive with GnuPG in Helm's own format, so the text it
signs must be exactly what `helm package --sign` signs; Helm 3 and 4 accept it; a key Helm cannot read is
refused before anything is published."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from homeci import signing
from homeci.errors import HomeciError
from homeci.helm import Helm
from homeci_testing.chartrepo import ROOT, UpgradeRepository

FIXTURE = ROOT / "tests" / "fixtures" / "charts" / "umbrella"


def _signed_text(prov: str) -> str:
    """The message of an OpenPGP clear-signed text (headers dropped, dash-escaping undone)."""
    lines = prov.splitlines()
    start = lines.index("-----BEGIN PGP SIGNED MESSAGE-----")
    body_start = lines.index("", start) + 1
    end = lines.index("-----BEGIN PGP SIGNATURE-----")
    return "\n".join(ln[2:] if ln.startswith("- ") else ln for ln in lines[body_start:end])


def test_signed_text_is_what_helm_package_sign_signs(signer: signing.ProvenanceSigner,
                                                     tmp_path: Path) -> None:
    gpg = signer.gpg
    secring = tmp_path / "secring.gpg"
    secring.write_bytes(gpg.run(["--export-secret-keys", signer.fingerprint], what="exporting the test key"))
    helm = Helm(3)
    helm.run(["package", str(FIXTURE), "--destination", str(tmp_path), "--sign", "--key",
              signing.TEST_KEY_UID, "--keyring", str(secring)])
    archive = tmp_path / "umbrella-0.1.0.tgz"
    helms = _signed_text((tmp_path / "umbrella-0.1.0.tgz.prov").read_text())
    ours = signing.provenance_message(archive, helm).decode()
    # (the clear-signing framing differs in one trailing newline: Go's encoder keeps the message's last one)
    assert ours.rstrip("\n") == helms.rstrip("\n"), (
        f"homeci's provenance text differs from Helm's:\n{ours}\n---\n{helms}")


@pytest.mark.parametrize("major", [3, 4])
def test_every_published_archive_verifies(repository: UpgradeRepository, major: int) -> None:
    archives = sorted(repository.directory.glob("*.tgz"))
    assert len(archives) == 3, f"{repository.directory} holds {[a.name for a in archives]}"
    for archive in archives:
        out = Helm(major).verify(archive, repository.keyring)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        assert f"Chart Hash Verified: sha256:{digest}" in out, f"helm{major} verify {archive.name}: {out!r}"


def test_a_signature_helm_refuses_is_not_published(signer: signing.ProvenanceSigner, tmp_path: Path) -> None:
    """If Helm refuses the signature just made (a key an older Helm cannot read, a broken gpg), the .prov is
    removed and the error says so in one line. Every key today's GnuPG makes is one Helm 3.21/4 reads, so
    this Helm refuses every verification (it is the real one for everything else)."""
    real = Helm(3).binary
    fake = tmp_path / "helm"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = verify ]; then echo "Error: openpgp: invalid signature: '
                    f'hash tag doesn\'t match" >&2; exit 1; fi\nexec {real} "$@"\n')
    fake.chmod(0o755)
    Helm(3).package(ROOT / "tests" / "fixtures" / "charts" / "good", tmp_path)
    archive = tmp_path / "good-0.1.0.tgz"
    refusing = signing.ProvenanceSigner(signer.key, Helm(3, binary=fake))
    try:
        with pytest.raises(HomeciError) as exc:
            refusing.sign(archive)
    finally:
        refusing.close()
    message = str(exc.value)
    assert message == (f"{archive}.prov: Helm does not accept the signature just made (Error: openpgp: "
                       "invalid signature: hash tag doesn't match); check the key (RSA or DSA, which every "
                       "Helm reads) and GnuPG"), message
    assert not (tmp_path / "good-0.1.0.tgz.prov").exists(), "a refused signature was left beside the archive"


def test_missing_gpg_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(HomeciError, match=r"^signing with OpenPGP key 'x' needs gpg, which is not installed: "
                                          r"install GnuPG \(Debian/Ubuntu: apt-get install gnupg\)$"):
        signing.Gpg(tmp_path).clearsign(b"text", signing.GpgKey("x"))
