"""The kwokctl configuration homeci writes: nothing downloadable, loopback only, full Stage set."""

from __future__ import annotations

from pathlib import Path

from homeci.cluster.sim.kwokctl import Binaries, kwokctl_config
from homeci.cluster.sim.stages import stages


def _config() -> list[dict[str, object]]:
    b = Binaries(*(Path(f"/opt/bin/{n}") for n in ("kwokctl", "kwok", "etcd", "kube-apiserver",
                                                   "kube-controller-manager", "kube-scheduler")))
    return kwokctl_config(b, kube_version="v1.37.2", etcd_version="v3.7.3", kwok_version="v0.8.0")


def test_every_binary_is_local_and_listeners_are_loopback() -> None:
    options = _config()[0]["options"]
    assert isinstance(options, dict)
    binaries = {k: v for k, v in options.items() if k.endswith("Binary")}
    for key in ("kubeApiserverBinary", "kubeControllerManagerBinary", "kubeSchedulerBinary",
                "kwokControllerBinary", "etcdBinary", "kubectlBinary"):
        assert key in binaries, f"KwokctlConfiguration options.{key} not set: kwokctl would download it"
    remote = {k: v for k, v in binaries.items() if "://" in str(v)}
    assert not remote, f"options would download: {remote}"
    assert options["bindAddress"] == "127.0.0.1"
    assert options["kubeAdmission"] is True and options["kubeAuthorization"] is True


def test_custom_stages_keep_the_default_lifecycle() -> None:
    # kwokctl drops its built-in Stages once any custom Stage exists: ours must cover them.
    names = {s["metadata"]["name"] for s in stages()}
    for needed in ("homeci-node-initialize", "homeci-node-heartbeat", "homeci-pod-ready",
                   "homeci-pod-complete", "homeci-pod-delete", "homeci-service-loadbalancer"):
        assert needed in names, f"Stage {needed} missing"
    kinds = {s["spec"]["resourceRef"]["kind"] for s in stages()}
    assert kinds == {"Node", "Pod", "Service"}
