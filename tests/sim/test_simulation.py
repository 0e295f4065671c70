"""What the simulated cluster itself promises (issue 6, part 2): the stamped version Helm checks,
loopback-only listeners, nodes, PVCs that bind, LoadBalancer addresses, completing test pods."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from kubernetes import client

from homeci import toolchain
from homeci.cluster.sim import SimCluster
from homeci.cluster.sim.simcluster import NODE_NAMES


def _eventually(what: str, check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError(f"{what}: still {last!r} after {timeout:.0f}s")


def _restricted_pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": "registry.invalid/never-pulled:1",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def test_version_is_stamped_and_server_is_loopback(sim_cluster: SimCluster, api: Any) -> None:
    reported = client.VersionApi(api).get_code().git_version
    pin = toolchain.tool("kube-apiserver")
    if toolchain.override(pin) is None:
        assert reported == pin.version, f"/version reports {reported}, built {pin.version} (Helm checks it)"
    assert not reported.startswith("v0.0.0"), f"unstamped /version {reported}: Helm refuses charts"
    host = urlparse(sim_cluster.server() or "").hostname or ""
    assert ipaddress.ip_address(host).is_loopback, f"API server at {host}, expected a loopback address"
    nodes = {n.metadata.name for n in client.CoreV1Api(api).list_node().items}
    assert set(NODE_NAMES) <= nodes, f"simulated nodes {sorted(nodes)}"


def test_pvc_binds_and_loadbalancer_gets_address(api: Any, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "x"}},
    })
    def pvc() -> object:
        phase = core.read_namespaced_persistent_volume_claim("data", namespace).status.phase
        return phase == "Bound" or phase

    _eventually("PersistentVolumeClaim/data phase", pvc)

    def lb() -> object:
        ingress = core.read_namespaced_service("lb", namespace).status.load_balancer.ingress
        return (bool(ingress) and ingress[0].ip == "127.0.0.1") or ingress

    _eventually("Service/lb status.loadBalancer.ingress", lb)


def test_helm_test_pods_complete_plain_pods_keep_running(api: Any, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _restricted_pod("chart-test", {"helm.sh/hook": "test"}))
    core.create_namespaced_pod(namespace, _restricted_pod("app", {}))

    def phase(name: str) -> str:
        return str(core.read_namespaced_pod(name, namespace).status.phase)

    _eventually("Pod/chart-test (helm.sh/hook: test) phase", lambda: phase("chart-test") == "Succeeded"
                or phase("chart-test"))
    _eventually("Pod/app phase", lambda: phase("app") == "Running" or phase("app"))
    time.sleep(1)
    assert phase("app") == "Running", "a plain pod must keep running (only Job and test pods complete)"
