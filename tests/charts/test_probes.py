"""Every long-running container has liveness and readiness probes that point at a declared port."""

from __future__ import annotations

from typing import Any

from .conftest import LONG_RUNNING_KINDS, Rendered, containers


def _port_ok(probe: dict[str, Any], container: dict[str, Any]) -> bool:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            port = probe[handler].get("port")
            if isinstance(port, str):
                return port in {p.get("name") for p in container.get("ports") or []}
            return isinstance(port, int) and port > 0
    return "exec" in probe


def test_probes(rendered: Rendered) -> None:
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests, init=False):
        if w.kind not in LONG_RUNNING_KINDS:
            continue
        for probe in ("livenessProbe", "readinessProbe"):
            spec = c.get(probe)
            if not spec:
                problems.append(f"{w.ref} {path}.{probe} is missing")
            elif not _port_ok(spec, c):
                problems.append(f"{w.ref} {path}.{probe} targets a port the container does not declare")
    assert not problems, "\n".join(problems)
