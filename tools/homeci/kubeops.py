"""Operations on a running stack through the API server only (no kubectl, no public DNS): run a
command in a container (``exec``, binary-safe, with an upload on stdin), reach a pod's port
(``portforward``) as a :class:`~homeci.flow.web.Web`, scale a Deployment and wait for it, start a
helper pod from a Deployment's own pod template. Used by ``homeci backup``, ``restore`` and ``status``.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from homeci.errors import HomeciError
from homeci.flow.web import Response

Progress = Callable[[str], None]
CHUNK = 1 << 16
HELPER_LABEL = "homeci.dev/helper"


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def exec_in(api: Any, namespace: str, pod: str, container: str, command: list[str], *,
            stdout: IO[bytes] | None = None, upload: Path | None = None, timeout: float = 1800) -> bytes:
    """Run ``command`` in ``pod``/``container``; its stdout goes to ``stdout`` (or is returned), the
    file ``upload`` is written to its stdin (the command must read exactly its size: the exec protocol
    cannot close stdin). A non-zero exit is one line with the command and the end of its stderr."""
    from kubernetes.stream import stream

    ws = stream(_core(api).connect_get_namespaced_pod_exec, pod, namespace, container=container,
                command=command, stderr=True, stdin=upload is not None, stdout=True, tty=False,
                _preload_content=False, binary=True)
    out = bytearray()
    err = bytearray()
    deadline = time.monotonic() + timeout
    source = upload.open("rb") if upload is not None else None
    try:
        while ws.is_open():
            if time.monotonic() > deadline:
                raise HomeciError(f"{' '.join(command[:3])} in {namespace}/{pod} ({container}) did not end "
                                  f"in {timeout:.0f}s")
            ws.update(timeout=0.2 if source else 1)
            if ws.peek_stdout():
                data = ws.read_stdout()
                if stdout is not None:
                    stdout.write(data)
                else:
                    out += data
            if ws.peek_stderr():
                err += ws.read_stderr()
            if source is not None:
                chunk = source.read(CHUNK * 4)
                if chunk:
                    ws.write_stdin(chunk)
                else:
                    source.close()
                    source = None
        code = ws.returncode
    finally:
        if source is not None:
            source.close()
        ws.close()
    if code != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise HomeciError(f"`{' '.join(command)[:120]}` in {namespace}/{pod} ({container}) exited {code}: "
                          f"{' / '.join(tail) or 'no output'}")
    return bytes(out)


class PodWeb:
    """Plain HTTP to one pod port through the API server's port-forward: a :class:`Web` for in-cluster
    services (the registry's ``/v2``, Drone's ``/api``) that needs neither public DNS nor a route into
    the cluster. The URL's host is ignored; its path and query are sent."""

    def __init__(self, api: Any, namespace: str, pod: str, port: int) -> None:
        self.api, self.namespace, self.pod, self.port = api, namespace, pod, port

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 30.0) -> Response:
        from kubernetes.stream import portforward

        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            pf = portforward(_core(self.api).connect_get_namespaced_pod_portforward, self.pod,
                             self.namespace, ports=str(self.port))
            sock = pf.socket(self.port)
            sock.setblocking(True)
            sock.settimeout(timeout)
        except Exception as exc:  # ApiException, websocket errors
            raise HomeciError(f"port-forward to {self.namespace}/{self.pod}:{self.port} failed: "
                              f"{' '.join(str(exc).split())[:200]}") from None
        conn = http.client.HTTPConnection(parts.hostname or "localhost", self.port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        except (OSError, http.client.HTTPException) as exc:
            where = f"{self.namespace}/{self.pod}:{self.port}"
            raise HomeciError(f"{method} {target} on {where}: {exc}") from None
        finally:
            conn.close()
            pf.close()


def ready_pod(api: Any, namespace: str, selector: str, what: str) -> Any:
    """The one Running and Ready pod matching ``selector`` (not terminating)."""
    pods = [p for p in _core(api).list_namespaced_pod(namespace, label_selector=selector).items
            if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
            and all(c.ready for c in p.status.container_statuses or [])]
    if not pods:
        raise HomeciError(f"no Ready pod of {what} in namespace {namespace} (selector {selector}): "
                          f"check `kubectl -n {namespace} get pods -l {selector}`")
    return pods[0]


def scale(api: Any, namespace: str, name: str, replicas: int, *, timeout: float = 300,
          progress: Progress | None = None) -> None:
    """Scale Deployment ``name`` and wait: to zero until its pods are gone, else until Ready."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})
    dep = apps.read_namespaced_deployment(name, namespace)
    selector = ",".join(f"{k}={v}" for k, v in sorted((dep.spec.selector.match_labels or {}).items()))
    if progress:
        progress(f"Deployment/{name} → {replicas}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replicas == 0:
            if not _core(api).list_namespaced_pod(namespace, label_selector=selector).items:
                return
        else:
            st = apps.read_namespaced_deployment(name, namespace).status
            if (st.ready_replicas or 0) >= replicas and (st.updated_replicas or 0) >= replicas \
                    and (st.replicas or 0) == replicas:
                return
        time.sleep(1)
    state = "its pods did not go away" if replicas == 0 else "it did not become Ready"
    raise HomeciError(f"Deployment {namespace}/{name} scaled to {replicas} but {state} within "
                      f"{timeout:.0f}s: check `kubectl -n {namespace} describe deployment {name}`")


def helper_pod(api: Any, namespace: str, deployment: str, container: str, command: list[str], *,
               run_as: str | None = None, timeout: float = 300) -> str:
    """A pod with ``deployment``'s own pod template (volumes, security context, node placement) but
    only ``container``, running ``command`` (an idle one) instead; ``run_as`` takes the security
    context of that other container. Its labels do not match the Deployment's selector, so the
    ReplicaSet leaves it alone. Returns its name once Running."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    dep = client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
    spec = api.sanitize_for_serialization(dep.spec.template.spec)
    by_name = {c["name"]: c for c in spec.get("containers", [])}
    if container not in by_name:
        raise HomeciError(f"Deployment {namespace}/{deployment} has no container {container!r}")
    main = dict(by_name[container])
    main["command"] = command
    main.pop("args", None)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe", "ports", "lifecycle"):
        main.pop(probe, None)
    if run_as and run_as in by_name and "securityContext" in by_name[run_as]:
        main["securityContext"] = by_name[run_as]["securityContext"]
    spec["containers"] = [main]
    spec.pop("initContainers", None)
    spec["restartPolicy"] = "Never"
    name = f"{deployment}-helper"
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {HELPER_LABEL: deployment,
                                    "app.kubernetes.io/managed-by": "homeci"}},
            "spec": spec}
    core = _core(api)
    delete_pod(api, namespace, name)
    try:
        core.create_namespaced_pod(namespace, body)
    except ApiException as exc:
        raise HomeciError(f"cannot start helper pod {namespace}/{name}: {exc.status} {exc.reason} "
                          f"{' '.join(str(exc.body).split())[:200]}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running":
            return name
        if pod.status.phase in ("Failed", "Succeeded"):
            break
        time.sleep(1)
    raise HomeciError(f"helper pod {namespace}/{name} is not Running after {timeout:.0f}s: "
                      f"check `kubectl -n {namespace} describe pod {name}`")


def delete_pod(api: Any, namespace: str, name: str, *, timeout: float = 120) -> None:
    from kubernetes.client.exceptions import ApiException

    core = _core(api)
    try:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
        time.sleep(0.5)
