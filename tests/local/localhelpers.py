"""Helpers for the local real-cluster tests: restricted pod specs and waits."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

# A locally built image with a shell-free Python (homeci.images recipe), run as a non-root user.
TEST_IMAGE = "docker.io/library/python:3.13.7-alpine3.22"
PSS_MODES = ("enforce", "audit", "warn")

RESTRICTED_CONTAINER = {
    "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def create_namespace(api: Any, name: str, level: str = "restricted") -> None:
    labels = {f"pod-security.kubernetes.io/{m}": level for m in PSS_MODES}
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels}})


def delete_namespace(api: Any, name: str) -> None:
    try:
        client.CoreV1Api(api).delete_namespace(name, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise


def python_pod(name: str, script: str, *, labels: dict[str, str] | None = None,
               volumes: list[dict[str, Any]] | None = None, mounts: list[dict[str, Any]] | None = None,
               fs_group: int | None = None, port: int | None = None,
               restart: str = "Never") -> dict[str, Any]:
    """A Pod Security ``restricted`` pod running ``python3 -c script`` as uid 1000."""
    container: dict[str, Any] = {
        "name": "main", "image": TEST_IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "-c", script], "securityContext": RESTRICTED_CONTAINER,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "volumeMounts": mounts or [],
    }
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    pod_sc: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if fs_group is not None:
        pod_sc["fsGroup"] = fs_group
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"restartPolicy": restart, "enableServiceLinks": False, "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": 1, "securityContext": pod_sc, "containers": [container],
                 "volumes": volumes or []},
    }


def wait_pod(api: Any, ns: str, name: str, *, phase: str = "Running", ready: bool = False,
             timeout: float = 120) -> Any:
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.phase == "Failed" and phase != "Failed":
            break
        if pod.status.phase == phase and (not ready or all(
                c.ready for c in pod.status.container_statuses or [])):
            return pod
        time.sleep(0.5)
    logs = ""
    with contextlib.suppress(ApiException):
        logs = core.read_namespaced_pod_log(name, ns, tail_lines=10)
    states = [(c.name, c.state) for c in (pod.status.container_statuses or [])] if pod else []
    raise AssertionError(f"pod {ns}/{name} not {phase}{' and Ready' if ready else ''} after {timeout:.0f}s: "
                         f"phase {pod.status.phase if pod else None}, {states}, logs: {logs!r}")


def pod_logs(api: Any, ns: str, name: str) -> str:
    return str(client.CoreV1Api(api).read_namespaced_pod_log(name, ns))
