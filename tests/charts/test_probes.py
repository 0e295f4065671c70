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


def test_deployments_are_probed_every_second_while_they_start(rendered: Rendered) -> None:
    """`helm install --wait` (and a rollout) returns when every pod is Ready: a container whose first
    readiness probe comes before it listens would otherwise wait a whole readiness period (10 s) more. A
    startup probe every second, with the readiness probe's handler and minutes of budget, removes that
    wait."""
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests, init=False):
        if w.kind != "Deployment" or not c.get("readinessProbe"):
            continue
        startup, ready = c.get("startupProbe"), c["readinessProbe"]
        if not startup:
            problems.append(f"{w.ref} {path}.startupProbe is missing")
            continue
        handler = {k: v for k, v in startup.items() if k in ("httpGet", "tcpSocket", "grpc", "exec")}
        if handler != {k: v for k, v in ready.items() if k in ("httpGet", "tcpSocket", "grpc", "exec")}:
            problems.append(f"{w.ref} {path}.startupProbe asks something else than its readinessProbe")
        period = startup.get("periodSeconds", 10)
        if period != 1:
            problems.append(f"{w.ref} {path}.startupProbe.periodSeconds is {period}, not 1")
        if period * startup.get("failureThreshold", 3) < 120:
            problems.append(f"{w.ref} {path}.startupProbe gives less than 2 minutes to start")
    assert not problems, "\n".join(problems)


def test_deployments_probe_readiness_every_two_seconds(rendered: Rendered) -> None:
    """A kubelet that started less than a readiness period ago sleeps a random part of that period before
    a container's first readiness probe, whatever its startup probe says: on a node that had just booted,
    Gogs and the runner were Ready 9 s after they answered (period 10 s). At most 2 s bounds that wait."""
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests, init=False):
        if w.kind != "Deployment" or not c.get("readinessProbe"):
            continue
        period = c["readinessProbe"].get("periodSeconds", 10)
        if period > 2:
            problems.append(f"{w.ref} {path}.readinessProbe.periodSeconds is {period}, more than 2")
    assert not problems, "\n".join(problems)
