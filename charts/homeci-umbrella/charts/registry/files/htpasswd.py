"""Rehash the registry's htpasswd line at a lower bcrypt cost (the registry chart's hook Job).

The registry checks the bcrypt hash on *every* authenticated request (no session, no cache), and a push
or pull makes dozens: at Helm's only cost (10, sprig's htpasswd) that is ~60 ms of CPU per request on
an idle core, several times more on a busy one. The generated password is 32 random letters and
digits (~190 bits), which no cost makes any easier or harder to guess, so the line is remade at
BCRYPT_COST. Runs after every install and upgrade: reads Secret AUTH_SECRET of NAMESPACE, and only when
its line's cost is higher than BCRYPT_COST writes a new line (same user and password) and the matching
``homeci.dev/htpasswd-of`` fingerprint (the chart keeps a line whose fingerprint matches). The registry
re-reads the file when the kubelet updates it: no restart. Standard library only (runs in the
python:3.13.14-alpine3.24 image): bcrypt is implemented below (OpenBSD's algorithm: Blowfish with the
expensive key schedule; the Blowfish constants are the hexadecimal digits of pi, computed here).

    python3 htpasswd.py            # in the Job: the in-cluster API, the ServiceAccount token
    python3 htpasswd.py --hash USER PASSWORD COST   # print a line (tests, operators)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

FINGERPRINT = "homeci.dev/htpasswd-of"
# The pod's ServiceAccount token, CA and namespace (SERVICEACCOUNT_DIR: elsewhere, for tests).
SA_DIR = Path(os.environ.get("SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"))
MASK = 0xFFFFFFFF
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
LINE = re.compile(r"^(?P<user>[^:]+):\$2[abxy]?\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}$")


def pi_words(count: int) -> list[int]:
    """The first ``count`` 32-bit words of pi's fractional part (Blowfish's P-array, then S-boxes)."""
    bits = 32 * count + 64  # guard bits
    one = 1 << bits

    def arctan_inverse(x: int) -> int:  # atan(1/x) in fixed point
        total = term = one // x
        x2, k, sign = x * x, 1, -1
        while term:
            term //= x2
            total += sign * (term // (2 * k + 1))
            k, sign = k + 1, -sign
        return total

    pi = 16 * arctan_inverse(5) - 4 * arctan_inverse(239)  # Machin's formula
    fraction = (pi - 3 * one) >> 64
    return [(fraction >> (32 * (count - 1 - i))) & MASK for i in range(count)]


_PI = pi_words(18 + 4 * 256)


class Blowfish:
    def __init__(self) -> None:
        self.p = _PI[:18]
        self.s = [_PI[18 + 256 * i: 18 + 256 * (i + 1)] for i in range(4)]

    def encrypt(self, left: int, right: int) -> tuple[int, int]:
        p, s0, s1, s2, s3 = self.p, self.s[0], self.s[1], self.s[2], self.s[3]
        for i in range(16):
            left ^= p[i]
            right ^= ((((s0[left >> 24] + s1[(left >> 16) & 0xFF]) & MASK) ^ s2[(left >> 8) & 0xFF])
                      + s3[left & 0xFF]) & MASK
            left, right = right, left
        left, right = right, left
        return left ^ p[17], right ^ p[16]

    def expand(self, salt: bytes, key: bytes) -> None:
        """bcrypt's ExpandKey: key into the P-array, then every subkey re-encrypted, salt mixed in."""
        kpos = 0
        for i in range(18):
            word = 0
            for _ in range(4):
                word, kpos = (word << 8) | key[kpos], (kpos + 1) % len(key)
            self.p[i] ^= word
        spos, left, right = 0, 0, 0

        def salt_word() -> int:
            nonlocal spos
            if not salt:
                return 0
            word = int.from_bytes(salt[spos:spos + 4], "big")
            spos = (spos + 4) % len(salt)
            return word

        for i in range(0, 18, 2):
            left ^= salt_word()
            right ^= salt_word()
            left, right = self.encrypt(left, right)
            self.p[i], self.p[i + 1] = left, right
        for box in self.s:
            for i in range(0, 256, 2):
                left ^= salt_word()
                right ^= salt_word()
                left, right = self.encrypt(left, right)
                box[i], box[i + 1] = left, right


def _b64(data: bytes) -> str:
    """bcrypt's base64: its own alphabet, no padding."""
    std = base64.b64encode(data).decode().rstrip("=")
    return std.translate(str.maketrans(STD_ALPHABET, BCRYPT_ALPHABET))


def bcrypt(password: str, cost: int, salt: bytes | None = None) -> str:
    """The ``$2b$`` hash of ``password`` at ``cost`` (4 to 31) with a random (or the given 16-byte) salt."""
    if not 4 <= cost <= 31:
        raise ValueError(f"bcrypt cost {cost} is outside 4..31")
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = (password.encode() + b"\0")[:72]
    state = Blowfish()
    state.expand(salt, key)
    for _ in range(1 << cost):
        state.expand(b"", key)
        state.expand(b"", salt)
    words = [int.from_bytes(b"OrpheanBeholderScryDoubt"[i:i + 4], "big") for i in range(0, 24, 4)]
    for _ in range(64):
        for i in range(0, 6, 2):
            words[i], words[i + 1] = state.encrypt(words[i], words[i + 1])
    digest = b"".join(w.to_bytes(4, "big") for w in words)[:23]
    return f"$2b${cost:02d}${_b64(salt)[:22]}{_b64(digest)[:31]}"


def fingerprint(line: str, user: str, password: str) -> str:
    """What the chart records in homeci.dev/htpasswd-of (homeci-registry.htpasswdOf)."""
    return "sha256:" + hashlib.sha256(f"{line}\n{user}:{password}".encode()).hexdigest()


class Api:
    """The Kubernetes API from inside a pod, as the pod's ServiceAccount."""

    def __init__(self) -> None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise SystemExit("homeci: no KUBERNETES_SERVICE_HOST: run it in the chart's Job (a pod)")
        self.base = f"https://{host}:{port}"
        self.token = (SA_DIR / "token").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))

    def call(self, method: str, path: str, body: object | None = None,
             content_type: str = "application/json") -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Accept": "application/json", "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as resp:
                result: dict[str, object] = json.loads(resp.read() or b"{}")
                return result
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise SystemExit(f"homeci: {method} {path}: HTTP {exc.code} {detail}") from None


def rehash(api: Api, namespace: str, name: str, cost: int) -> str:
    """Lower the cost of Secret ``name``'s htpasswd line to ``cost``; returns what was done."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
    secret = api.call("GET", path)
    data = secret.get("data")
    if not isinstance(data, dict):
        raise SystemExit(f"homeci: Secret {namespace}/{name} has no data")
    try:
        user, password, line = (base64.b64decode(str(data[k])).decode() for k in ("username", "password",
                                                                                   "htpasswd"))
    except KeyError as exc:
        raise SystemExit(f"homeci: Secret {namespace}/{name} has no key {exc}") from None
    found = LINE.match(line.strip())
    if found is None or found["user"] != user:
        raise SystemExit(f"homeci: Secret {namespace}/{name} key htpasswd is not a bcrypt line for {user}")
    if int(found["cost"]) <= cost:
        return f"unchanged: bcrypt cost {int(found['cost'])} (at most {cost})"
    new = f"{user}:{bcrypt(password, cost)}"
    metadata = secret.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    patch = {"metadata": {"resourceVersion": version, "annotations": {FINGERPRINT: fingerprint(new, user,
                                                                                               password)}},
             "data": {"htpasswd": base64.b64encode(new.encode()).decode()}}
    api.call("PATCH", path, patch, content_type="application/merge-patch+json")
    return f"rehashed: bcrypt cost {int(found['cost'])} -> {cost}"


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--hash"] and len(argv) == 5:
        print(f"{argv[2]}:{bcrypt(argv[3], int(argv[4]))}")
        return 0
    namespace = os.environ.get("NAMESPACE", "")
    name = os.environ.get("AUTH_SECRET", "")
    cost = int(os.environ.get("BCRYPT_COST", "5"))
    if not name or not namespace:
        raise SystemExit("homeci: NAMESPACE and AUTH_SECRET must be set (the chart's Job sets both)")
    print(f"homeci: Secret {namespace}/{name}: {rehash(Api(), namespace, name, cost)}", file=sys.stderr,
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
