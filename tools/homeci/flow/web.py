"""HTTPS to the stack's public names, trusting only the homeci CA.

Two ways to reach ``https://<host>.<domain>``: :class:`DirectWeb` resolves names as usual (an operator's
machine whose DNS knows the stack), :class:`homeci.realprog.PublicNames` connects to a loopback port
standing in for them (the local cluster's forwarder) while SNI, certificate check and ``Host`` use the
public name. Both answer :meth:`Web.request`.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from homeci.errors import HomeciError
from homeci.realprog import Response


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
