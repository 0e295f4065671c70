"""The registry chart's rehash program (files/htpasswd.py): its own bcrypt must be bcrypt.

The registry verifies lines with Go's golang.org/x/crypto/bcrypt; here the program's hashes are checked
against OpenBSD's published test vectors (fixed salts) and against pyca/bcrypt (random salts), and its
fingerprint against what the chart itself records. tests/sim/test_rotation.py runs the program against a
real API server; tests/realprog/test_registry_program.py shows the real registry accepting its line.
"""

from __future__ import annotations

import base64
import importlib.util
import re
from types import ModuleType

import bcrypt as pyca
import pytest

from homeci import manifests
from homeci_testing import support

PROGRAM = support.CHARTS / "homeci-umbrella" / "charts" / "registry" / "files" / "htpasswd.py"
# OpenBSD's bcrypt test vectors (also jBCrypt's): password, salt, hash at cost 6.
VECTORS = [
    ("", "DCq7YPn5Rq63x1Lad4cll.", "TV4S6ytwfsfvkgY8jIucDrjc8deX1s."),
    ("a", "m0CrhHm10qJ3lXRY.5zDGO", "3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"),
    ("abc", "If6bvum7DFjUnE9p2uDeDu", "0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"),
    ("abcdefghijklmnopqrstuvwxyz", ".rCVZVOThsIa97pEDOxvGu", "RRgzG64bvtJ0938xuqzv18d3ZpQhstC"),
    ("~!@#$%^&*()      ~!@#$%^&*()PNBFRD", "fPIsBO8qRqkjj273rfaOI.", "HtSV9jLDpTbZn782DC6/t7qT67P6FfO"),
]


@pytest.fixture(scope="module")
def program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("registry_htpasswd", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _salt(text: str, program: ModuleType) -> bytes:
    std = text.translate(str.maketrans(program.BCRYPT_ALPHABET, program.STD_ALPHABET))
    return base64.b64decode(std + "=" * (-len(std) % 4))[:16]


def test_the_blowfish_constants_are_pis_digits(program: ModuleType) -> None:
    words = program.pi_words(18 + 1024)
    assert words[0] == 0x243F6A88 and words[17] == 0x8979FB1B, "P-array"
    assert words[18] == 0xD1310BA6 and words[-1] == 0x3AC372E6, "first and last S-box words"


@pytest.mark.parametrize(("password", "salt", "digest"), VECTORS, ids=[f"vector-{i}" for i in range(5)])
def test_bcrypt_matches_openbsds_vectors(program: ModuleType, password: str, salt: str, digest: str) -> None:
    assert program.bcrypt(password, 6, _salt(salt, program)) == f"$2b$06${salt}{digest}"


@pytest.mark.parametrize(("password", "cost"), [
    ("Zx81" * 8, 4), ("Zx81" * 8, 5), ("pässwörd with spaces", 5), ("x" * 80, 4),
], ids=["generated-cost4", "generated-cost5", "utf8", "longer-than-72-bytes"])
def test_a_line_checks_with_another_bcrypt(program: ModuleType, password: str, cost: int) -> None:
    hashed = program.bcrypt(password, cost)
    assert re.fullmatch(rf"\$2b\${cost:02d}\$[./A-Za-z0-9]{{53}}", hashed), hashed
    # bcrypt keys are at most 72 bytes (Go's bcrypt, like the program, ignores the rest; pyca refuses it)
    assert pyca.checkpw(password.encode()[:72], hashed.encode()), f"pyca/bcrypt refuses {hashed}"
    assert not pyca.checkpw(b"not the password", hashed.encode())
    assert program.LINE.match(f"homeci:{hashed}")["cost"] == f"{cost:02d}"
    assert program.bcrypt(password, cost) != hashed, "every line must get its own salt"


def test_costs_outside_bcrypts_range_are_refused(program: ModuleType) -> None:
    for cost in (3, 32):
        with pytest.raises(ValueError, match=r"outside 4\.\.31"):
            program.bcrypt("x", cost)


def test_the_fingerprint_is_the_charts(program: ModuleType) -> None:
    """The rehashed line must carry the annotation secret-auth.yaml computes, or the next upgrade would
    throw it away (and the line the chart renders must read as a bcrypt line of cost 10)."""
    objects = support.render(support.UMBRELLA)
    secret = manifests.get(objects, "Secret", "homeci-registry-auth")
    data = {k: base64.b64decode(v).decode() for k, v in secret.obj["data"].items()}
    recorded = secret.annotations["homeci.dev/htpasswd-of"]
    assert program.fingerprint(data["htpasswd"], data["username"], data["password"]) == recorded
    found = program.LINE.match(data["htpasswd"])
    assert found is not None and found["user"] == data["username"] and found["cost"] == "10", data["htpasswd"]
