"""HTTPS to the stack's public names, trusting only the homeci CA.

Two ways to reach ``https://<host>.<domain>``: :class:`DirectWeb` resolves names as usual (an operator's
machine whose DNS knows the stack), :class:`PublicNames` connects to a loopback port standing in for
them (the real node's or kind's forwarder, a kind port mapping) while SNI, certificate check and
``Host`` use the public name. Both answer :meth:`Web.request`.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from homeci.errors import HomeciError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class PublicNames:
    """HTTP(S) to the public host names (``git.<domain>`` ...) answered by a proxy on loopback ports.

    Each request connects to 127.0.0.1 on the port that stands in for the URL's scheme, while the
    TLS server name (SNI), certificate check and ``Host`` header use the public name — what a browser
    that resolves the name to the proxy would send. TLS trusts only ``ca_file``.
    """

    def __init__(self, ports: Mapping[str, int], ca_file: Path | None = None) -> None:
        self.ports = dict(ports)
        self.ca_file = ca_file
        self.context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    def _connection(self, scheme: str, host: str, timeout: float) -> http.client.HTTPConnection:
        if scheme not in self.ports:
            raise HomeciError(f"no loopback port stands in for {scheme}:// (have {sorted(self.ports)})")
        real = (LOOPBACK, self.ports[scheme])

        def dial(_addr: tuple[str, int], timeout: float | None = None,
                 source: tuple[str, int] | None = None) -> socket.socket:
            return socket.create_connection(real, timeout, source)

        conn: http.client.HTTPConnection
        if scheme == "https":
            if self.context is None:
                raise HomeciError("https:// needs the CA file: pass ca_file to PublicNames")
            conn = http.client.HTTPSConnection(host, 443, timeout=timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(host, 80, timeout=timeout)
        conn._create_connection = dial  # type: ignore[attr-defined]
        return conn

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 30.0) -> Response:
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            raise HomeciError(f"{url}: not an absolute URL")
        conn = self._connection(parts.scheme, parts.hostname, timeout)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def tls_peer(self, host: str) -> dict[str, Any]:
        """The certificate the https port presents for SNI ``host``, verified against the CA."""
        if self.context is None:
            raise HomeciError("checking a certificate needs the CA file: pass ca_file to PublicNames")
        with socket.create_connection((LOOPBACK, self.ports["https"]), timeout=10) as raw, \
                self.context.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert()
        return dict(cert or {})


class Web(Protocol):
    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 30.0) -> Response: ...


class DirectWeb:
    """HTTPS with the system resolver; TLS trusts only ``ca_file`` (no fallback to skipping checks)."""

    def __init__(self, ca_file: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(ca_file))

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 30.0) -> Response:
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HomeciError(f"{method} {url}: {reason}") from None


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def json_body(data: Any) -> tuple[bytes, dict[str, str]]:
    return json.dumps(data).encode(), {"Content-Type": "application/json"}


def expect(resp: Response, ok: tuple[int, ...], what: str) -> Response:
    """Raise one line naming ``what`` when the status is not one of ``ok``."""
    if resp.status not in ok:
        text = resp.body.decode(errors="replace").strip().replace("\n", " ")[:300]
        raise HomeciError(f"{what}: HTTP {resp.status} {text}")
    return resp
