#!/usr/bin/env python3
"""homeci `helm test`: the stack answers over TLS trusting only the homeci CA, Drone reaches Gogs, and
the registry authenticates. Standard library only; one line per check; exit 1 when any check fails.

Every request goes to TRAEFIK_ADDR (host:port of the Traefik Service, or empty to resolve the public
names through cluster DNS) with the public host name as TLS server name and Host header, so it checks
the certificate, the CA and the routing exactly as a browser would, without depending on DNS.

DRONE_TOKEN, REGISTRY_USERNAME and REGISTRY_PASSWORD: the variable, else the file of that name in
HOMECI_SECRETS_DIR (the test Pod mounts its Secrets there, so no secret is in its environment).
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import sys

CA_FILE = os.environ.get("CA_FILE", "/etc/homeci/ca.crt")
SECRETS_DIR = os.environ.get("HOMECI_SECRETS_DIR", "")
TRAEFIK = os.environ.get("TRAEFIK_ADDR", "")
TIMEOUT = float(os.environ.get("TEST_TIMEOUT", "15"))


class Conn(http.client.HTTPSConnection):
    """HTTPS to ``host`` (SNI, Host header, certificate name) over a socket to TRAEFIK_ADDR."""

    def connect(self) -> None:
        if TRAEFIK:
            addr, _, port = TRAEFIK.rpartition(":")
            raw = socket.create_connection((addr, int(port)), self.timeout)
        else:
            raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def request(host: str, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    ctx = ssl.create_default_context(cafile=CA_FILE)
    conn = Conn(host, 443, timeout=TIMEOUT, context=ctx)
    try:
        conn.request(method, path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def check(name: str, host: str, method: str, path: str, want: set[int],
          headers: dict[str, str] | None = None, hint: str = "") -> bool:
    try:
        status = request(host, method, path, headers)
    except ssl.SSLCertVerificationError as exc:
        print(f"FAIL {name}: https://{host}{path}: certificate not trusted by the homeci CA "
              f"({exc.verify_message}); is Traefik serving the <release>-tls Secret?")
        return False
    except (OSError, http.client.HTTPException) as exc:
        print(f"FAIL {name}: https://{host}{path}: {type(exc).__name__}: {exc}")
        return False
    if status not in want:
        print(f"FAIL {name}: {method} https://{host}{path} answered HTTP {status}, expected "
              f"{' or '.join(map(str, sorted(want)))}{hint}")
        return False
    print(f"ok   {name}: {method} https://{host}{path} -> HTTP {status}")
    return True


def secret(name: str) -> str:
    """``$name``, else the content of ``$HOMECI_SECRETS_DIR/<name>``, else ""."""
    value = os.environ.get(name, "")
    if not value and SECRETS_DIR and os.path.isfile(os.path.join(SECRETS_DIR, name)):
        with open(os.path.join(SECRETS_DIR, name), encoding="utf-8") as f:
            value = f.read()
    return value


def main() -> int:
    results = []
    git, ci, registry = (os.environ.get(k, "") for k in ("GIT_HOST", "CI_HOST", "REGISTRY_HOST"))
    if git:
        results.append(check("git over TLS", git, "GET", "/", {200}))
    if ci:
        results.append(check("ci over TLS", ci, "GET", "/healthz", {200}))
        token = secret("DRONE_TOKEN")
        if token:
            results.append(check("Drone reaches Gogs (repository sync)", ci, "POST", "/api/user/repos",
                                 {200}, {"Authorization": f"Bearer {token}"},
                                 "; Drone could not list the admin's Gogs repositories: has the bootstrap "
                                 "hook logged the admin in (kubectl logs job/<release>-drone-bootstrap)?"))
    if registry:
        results.append(check("registry refuses anonymous pushes", registry, "GET", "/v2/", {401}))
        user, password = secret("REGISTRY_USERNAME"), secret("REGISTRY_PASSWORD")
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        results.append(check("registry authenticates", registry, "GET", "/v2/", {200},
                             {"Authorization": f"Basic {auth}"},
                             "; the credentials of Secret <release>-registry-auth were refused"))
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
