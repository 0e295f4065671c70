"""Signatures for published charts: OpenPGP provenance (``.prov``) for the classic repository, cosign for OCI.

**Provenance.** Helm's format: the chart's metadata exactly as ``helm show chart`` prints it, the YAML
document-end marker ``...``, then ``files: {<archive file name>: sha256:<hex>}``, the whole text clear-signed
with OpenPGP. homeci writes it itself (GnuPG signs) instead of calling ``helm package --sign``, because the
archive it publishes is the deterministic rewrite of :func:`homeci.packaging.normalise`: Helm would sign the
archive *it* wrote, whose bytes change with every run. Helm is the verifier (``helm verify``, ``helm pull
--verify``, ``helm install --verify``), and :class:`ProvenanceSigner` runs ``helm verify`` right after
signing, so a signature Helm would refuse is never published.

**Keys.** Real releases use the maintainer's key from their GnuPG keyring (``--sign-key`` names it); tests
make a throwaway key in a temporary GnuPG home (:func:`throwaway_gpg_key`). No key is ever committed.
Helm reads public keys from a *binary* OpenPGP keyring, not GnuPG's keybox: :meth:`Gpg.export_public` writes
one (what consumers pass as ``--keyring``).

**cosign.** The OCI channel is signed with cosign key pairs (``cosign generate-key-pair``) and no
transparency log (offline, and the key is the trust anchor): ``cosign sign --tlog-upload=false`` and
``cosign verify --insecure-ignore-tlog``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import toolchain
from homeci.errors import HomeciError
from homeci.helm import Helm, HelmError

GPG_INSTALL = "install GnuPG (Debian/Ubuntu: apt-get install gnupg)"
TEST_KEY_UID = "homeci test signing key <signing@homeci.invalid>"


# -- OpenPGP (GnuPG) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpgKey:
    """A signing key in a GnuPG home: ``key_id`` is anything ``gpg --local-user`` takes."""

    key_id: str
    home: Path | None = None                 # GNUPGHOME; None: gpg's default (~/.gnupg or $GNUPGHOME)
    passphrase_file: Path | None = None      # for unattended signing with a protected key


def gpg_unavailable() -> str | None:
    """Why OpenPGP signing cannot work here (no gpg), or None."""
    return None if shutil.which("gpg") else f"gpg is not installed: {GPG_INSTALL}"


class Gpg:
    """GnuPG, run non-interactively against one home directory."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home

    def run(self, args: Sequence[str], *, stdin: bytes | None = None, what: str) -> bytes:
        binary = shutil.which("gpg")
        if binary is None:
            raise HomeciError(f"{what} needs gpg, which is not installed: {GPG_INSTALL}")
        argv = [binary, "--batch", "--no-tty", *(["--homedir", str(self.home)] if self.home else []), *args]
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=300, check=False)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
            raise HomeciError(f"{what} failed: gpg says {' / '.join(lines[-3:]) or '(nothing)'}")
        return proc.stdout

    def fingerprint(self, key_id: str, *, secret: bool = True) -> str:
        """The full fingerprint of ``key_id`` (a secret key unless ``secret=False``)."""
        listing = "--list-secret-keys" if secret else "--list-keys"
        out = self.run(["--with-colons", listing, key_id], what=f"looking up OpenPGP key {key_id!r}").decode()
        fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
        if not fprs:
            raise self._missing(key_id)
        return fprs[0]

    def export_public(self, key_id: str, dest: Path, *, armor: bool = False) -> Path:
        """Write ``key_id``'s public key: binary (a keyring Helm's ``--keyring`` reads) or ASCII-armoured."""
        data = self.run([*(["--armor"] if armor else []), "--export", key_id],
                        what=f"exporting the public key {key_id!r}")
        if not data:
            raise self._missing(key_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def clearsign(self, data: bytes, key: GpgKey) -> bytes:
        args = ["--local-user", key.key_id, "--digest-algo", "SHA256", "--clearsign"]
        if key.passphrase_file is not None:
            args = ["--pinentry-mode", "loopback", "--passphrase-file", str(key.passphrase_file), *args]
        return self.run(args, stdin=data, what=f"signing with OpenPGP key {key.key_id!r}")

    def stop_agent(self) -> None:
        """Stop the gpg-agent GnuPG started for this home (it outlives gpg otherwise)."""
        if self.home is not None and shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], capture_output=True,
                           timeout=30, check=False)

    def _missing(self, key_id: str) -> HomeciError:
        where = f"the GnuPG home {self.home}" if self.home else "your GnuPG keyring"
        return HomeciError(f"OpenPGP key {key_id!r}: not in {where}; import it or name another key")


@contextlib.contextmanager
def throwaway_gpg_key(directory: Path, uid: str = TEST_KEY_UID) -> Iterator[GpgKey]:
    """A new RSA signing key without passphrase in ``directory/gnupg`` (for tests; never publish with it).

    RSA, not Ed25519: Helm 3.21 and 4 read EdDSA keys (ProtonMail go-crypto), older Helm 3 releases
    (golang.org/x/crypto/openpgp) do not, and consumers run old Helm too."""
    home = directory / "gnupg"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    gpg = Gpg(home)
    try:
        gpg.run(["--pinentry-mode", "loopback", "--passphrase", "", "--quick-generate-key", uid, "rsa3072",
                 "sign", "never"], what="generating a throwaway OpenPGP key")
        yield GpgKey(gpg.fingerprint(uid), home)
    finally:
        gpg.stop_agent()


def provenance_message(archive: Path, helm: Helm) -> bytes:
    """The text Helm's provenance signs: metadata, ``...``, the archive's sha256 (see the module doc)."""
    metadata = helm.show_chart(archive)
    # `helm show chart` adds one newline after the YAML it marshals; the provenance has the YAML alone.
    metadata = metadata[:-1] if metadata.endswith("\n\n") else metadata
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    files = yaml.safe_dump({"files": {archive.name: f"sha256:{digest}"}}, default_flow_style=False)
    return f"{metadata}\n...\n{files}".encode()


@dataclass
class ProvenanceSigner:
    """Writes ``<archive>.prov`` with ``key`` and checks it with ``helm verify`` before returning."""

    key: GpgKey
    helm: Helm = field(default_factory=Helm)
    _keyring: Path | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def gpg(self) -> Gpg:
        return Gpg(self.key.home)

    @property
    def fingerprint(self) -> str:
        return self.gpg.fingerprint(self.key.key_id)

    def public_keyring(self) -> Path:
        """The signing key's public half as a binary keyring (kept for this signer's lifetime)."""
        if self._keyring is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="homeci-keyring-")
            self._keyring = self.gpg.export_public(self.fingerprint, Path(self._tmp.name) / "pubring.gpg")
        return self._keyring

    def sign(self, archive: Path) -> Path:
        prov = archive.with_name(archive.name + ".prov")
        prov.write_bytes(self.gpg.clearsign(provenance_message(archive, self.helm), self.key))
        try:
            self.helm.verify(archive, self.public_keyring())
        except HelmError as exc:
            prov.unlink()
            raise HomeciError(f"{prov}: Helm does not accept the signature just made ({exc.reason}); "
                              "check the key (RSA or DSA, which every Helm reads) and GnuPG") from None
        return prov

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp, self._keyring = None, None


# -- cosign (OCI) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignKey:
    """A cosign key pair; ``password`` decrypts ``private`` (cosign's COSIGN_PASSWORD)."""

    private: Path
    public: Path
    password: str = ""


def cosign_key_from_env(private: Path) -> CosignKey:
    """The maintainer's key: ``private`` (cosign.key), ``<same name>.pub`` beside it, COSIGN_PASSWORD."""
    if not private.is_file():
        raise HomeciError(f"--cosign-key {private}: no such file; create one with `cosign generate-key-pair`")
    public = private.with_suffix(".pub")
    if not public.is_file():
        raise HomeciError(f"{public}: the public half of {private} is missing; put it beside the private key")
    return CosignKey(private, public, os.environ.get("COSIGN_PASSWORD", ""))


class Cosign:
    """cosign from the toolchain. ``docker_config``: the directory of the registry logins (Helm's
    registry config.json has the same format); ``ca_file``: extra CA for the registry's TLS."""

    def __init__(self, *, docker_config: Path | None = None, ca_file: Path | None = None,
                 wrap: Sequence[str] = (), binary: Path | None = None) -> None:
        self.docker_config = docker_config
        self.ca_file = ca_file
        self.wrap = list(wrap)
        self._binary = binary

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = toolchain.resolve("cosign")
        return self._binary

    def run(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, what: str) -> str:
        full = dict(os.environ)
        full.update(env or {})
        if self.docker_config is not None:
            full["DOCKER_CONFIG"] = str(self.docker_config)
        if self.ca_file is not None:
            full["SSL_CERT_FILE"] = str(self.ca_file)
        try:
            proc = subprocess.run([*self.wrap, str(self.binary), *args], capture_output=True, text=True,
                                  env=full, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            raise HomeciError(f"{what}: cosign did not finish in 600s") from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith(("Error:", "error:"))] or lines[-2:]
            raise HomeciError(f"{what} failed: cosign says {' / '.join(errors) or '(nothing)'}")
        return proc.stdout

    def generate_key_pair(self, directory: Path, password: str = "") -> CosignKey:
        """A new key pair ``directory/cosign.key`` + ``cosign.pub`` (tests; maintainers bring their own)."""
        directory.mkdir(parents=True, exist_ok=True)
        prefix = directory / "cosign"
        self.run(["generate-key-pair", "--output-key-prefix", str(prefix)],
                 env={"COSIGN_PASSWORD": password}, what=f"generating a cosign key pair in {directory}")
        return CosignKey(prefix.with_suffix(".key"), prefix.with_suffix(".pub"), password)

    def sign(self, ref: str, key: CosignKey) -> None:
        """Sign ``ref`` (``host/repo@sha256:...``: a digest, never a tag) and push the signature beside it."""
        if "@sha256:" not in ref:
            raise HomeciError(f"cosign sign {ref}: sign a digest (host/repo@sha256:...), not a tag")
        self.run(["sign", "--key", str(key.private), "--tlog-upload=false", "--yes", ref],
                 env={"COSIGN_PASSWORD": key.password}, what=f"cosign sign {ref}")

    def verify(self, ref: str, public_key: Path) -> list[dict[str, Any]]:
        """The verified signature payloads of ``ref``; raises when none is valid for ``public_key``."""
        out = self.run(["verify", "--key", str(public_key), "--insecure-ignore-tlog=true", "--output", "json",
                        ref], what=f"cosign verify {ref}")
        data = json.loads(out or "[]")
        return data if isinstance(data, list) else [data]


PUSH_DIGEST = re.compile(r"^Digest:\s*(sha256:[0-9a-f]{64})\s*$", re.MULTILINE)


def pushed_digest(push_output: str, what: str) -> str:
    """The manifest digest ``helm push`` printed."""
    m = PUSH_DIGEST.search(push_output)
    if not m:
        raise HomeciError(f"{what}: helm push printed no 'Digest: sha256:...' line; cannot sign the chart")
    return m.group(1)
