"""The build namespace's admission policies on a real kube-apiserver (v1.37, the simulated cluster).

drone-runner-kube creates a build's pod with every container on the placeholder image and then swaps
each step's image in with a pod update; the clone credential sits in the build's Secret under the
DRONE_NETRC_* keys. These tests replay exactly those API calls against the rendered policies:
- nothing refuses the creation (drone-runner-kube 1.0.0-rc.5 crashes on a refused pod creation);
- the MutatingAdmissionPolicy gives every container the CA ConfigMap read-only at /etc/homeci and takes
  away `privileged` (which the runner sets for upstream's built-in image list);
- the clone container may receive the clone image; a step holding DRONE_NETRC_* (clone disabled, or
  `from_secret: DRONE_NETRC_PASSWORD` under another variable name) may not receive any other image,
  and the refusal says why; a step without the credential may;
- a build larger than one build may be (containers, summed limits) gets no step image either.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from homeci import manifests as mf
from homeci.cluster.sim import SimCluster
from homeci_testing import support

POLICY_KINDS = ("MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding")


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.base = [str(support.require_tool("kubectl")), "--kubeconfig", str(kubeconfig)]

    def __call__(self, *args: str, stdin: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc


@pytest.fixture(scope="module")
def stack(sim_cluster: SimCluster) -> Iterator[dict[str, Any]]:
    """The umbrella's build-namespace objects for a release of its own, applied as Helm would."""
    release = f"bp{uuid.uuid4().hex[:6]}"
    objs = support.render(support.UMBRELLA, release=release, namespace=release)
    builds = f"{release}-builds"
    wanted = [m for m in objs if m.kind in POLICY_KINDS and m.name.startswith(f"{release}-{release}-build")]
    wanted.append(mf.get(objs, "Namespace", builds))
    kubectl = Kubectl(sim_cluster.kubeconfig)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([m.obj for m in wanted]))
    ca = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{release}-ca", "namespace": builds},
          "data": {"ca.crt": "ca", "bundle.crt": "bundle"}}
    kubectl("apply", "-f", "-", stdin=json.dumps(ca))
    runner = mf.get(objs, "Deployment", f"{release}-drone-runner")
    env = {e["name"]: e.get("value", "") for _, c in runner.containers() for e in c.get("env") or []}
    st = {"release": release, "builds": builds, "kubectl": kubectl, "clone": env["DRONE_IMAGE_CLONE"],
          "placeholder": env["DRONE_IMAGE_PLACEHOLDER"]}
    try:
        _wait_until_loaded(st)
        yield st
    finally:
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-",
                stdin=yaml.safe_dump_all([m.obj for m in wanted]), check=False)


def _wait_until_loaded(st: dict[str, Any], timeout: float = 60) -> None:
    """The API server loads new policies asynchronously: probe until both act (a pod gets the CA volume,
    a netrc holder's image swap is refused)."""
    deadline = time.monotonic() + timeout
    for i in range(10_000):
        name = f"probe-{i}"
        _build_pod(st, name, {"test": "DRONE_NETRC_PASSWORD"})
        mutated = "homeci-step-ca" in st["kubectl"]("-n", st["builds"], "get", "pod", name, "-o",
                                                    "jsonpath={.spec.volumes[*].name}").stdout
        refused = _swap(st, name, 1, "docker.io/library/alpine:3.24.2").returncode != 0
        st["kubectl"]("-n", st["builds"], "delete", "pod", name, "--wait=false", check=False)
        if mutated and refused:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the build namespace's policies did not act within {timeout:.0f}s")
        time.sleep(1)


def _netrc_env(var: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": "build", "key": "DRONE_NETRC_PASSWORD",
                                                        "optional": True}}}


def _build_pod(stack: dict[str, Any], name: str, netrc_vars: dict[str, str], *,
               names: tuple[str, ...] = ("clone", "test", "deploy"), privileged: bool = False) -> None:
    """A pod as the runner creates it: every container on the placeholder image."""
    containers = []
    for cname in names:
        c: dict[str, Any] = {"name": cname, "image": stack["placeholder"],
                             "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
        if privileged:
            c["securityContext"] = {"privileged": True}
        if cname in netrc_vars:
            c["env"] = [_netrc_env(netrc_vars[cname])]
        containers.append(c)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": stack["builds"]},
           "spec": {"containers": containers, "automountServiceAccountToken": False}}
    stack["kubectl"]("create", "-f", "-", stdin=json.dumps(pod))


def _swap(stack: dict[str, Any], pod: str, index: int, image: str) -> subprocess.CompletedProcess[str]:
    patch = json.dumps([{"op": "replace", "path": f"/spec/containers/{index}/image", "value": image}])
    return stack["kubectl"]("-n", stack["builds"], "patch", "pod", pod, "--type=json", "-p", patch,
                            check=False)


def test_every_step_gets_the_ca_read_only(stack: dict[str, Any], api: Any) -> None:
    _build_pod(stack, "ca", {"clone": "DRONE_NETRC_PASSWORD"})
    pod = client.CoreV1Api(api).read_namespaced_pod("ca", stack["builds"])
    volume = next((v for v in pod.spec.volumes if v.config_map is not None), None)
    assert volume is not None and volume.config_map.name == f"{stack['release']}-ca", (
        f"Pod/ca spec.volumes: no ConfigMap volume of {stack['release']}-ca ({pod.spec.volumes})")
    for c in pod.spec.containers:
        mounts = [m for m in c.volume_mounts or [] if m.name == volume.name]
        assert [(m.mount_path, m.read_only) for m in mounts] == [("/etc/homeci", True)], (
            f"Pod/ca container {c.name}: CA mount {mounts}")


def test_clone_step_keeps_its_credential(stack: dict[str, Any]) -> None:
    _build_pod(stack, "clone", {"clone": "DRONE_NETRC_PASSWORD"})
    for index, image in ((0, stack["clone"]), (1, "docker.io/library/alpine:3.24.2"),
                         (2, "docker.io/alpine/kubectl:1.37.2")):
        proc = _swap(stack, "clone", index, image)
        assert proc.returncode == 0, f"swapping containers[{index}] to {image} was refused: {proc.stderr}"


@pytest.mark.parametrize("netrc_vars", [
    {"test": "DRONE_NETRC_PASSWORD"},  # `clone: disable: true`: the runner hands it to the first step
    {"clone": "DRONE_NETRC_PASSWORD", "test": "TOKEN"},  # from_secret: DRONE_NETRC_PASSWORD as TOKEN
], ids=["clone-disabled", "from-secret"])
def test_a_step_holding_the_credential_cannot_start(stack: dict[str, Any],
                                                    netrc_vars: dict[str, str]) -> None:
    name = f"steal-{uuid.uuid4().hex[:5]}"
    _build_pod(stack, name, netrc_vars)
    proc = _swap(stack, name, 1, "docker.io/library/alpine:3.24.2")
    assert proc.returncode != 0, "a test step holding the clone credential was given its own image"
    assert "the clone credential (DRONE_NETRC_*) may reach only the clone step" in proc.stderr, proc.stderr
    assert "docker.io/library/alpine:3.24.2" in proc.stderr, f"the refusal names the image: {proc.stderr}"


def test_privileged_steps_are_created_unprivileged(stack: dict[str, Any], api: Any) -> None:
    """The runner makes plugins/docker & co. privileged for any repository; Pod Security `baseline` would
    refuse the creation (and the runner crash). The pod is created, unprivileged."""
    _build_pod(stack, "priv", {}, privileged=True)
    pod = client.CoreV1Api(api).read_namespaced_pod("priv", stack["builds"])
    flags = {c.name: c.security_context.privileged for c in pod.spec.containers}
    assert flags == {"clone": False, "test": False, "deploy": False}, (
        f"Pod/priv containers' privileged: {flags}")


def test_an_oversized_build_gets_no_step(stack: dict[str, Any]) -> None:
    names = tuple(f"s{i:02d}" for i in range(17))
    _build_pod(stack, "big", {}, names=names)  # created: nothing runs yet, and the runner must not crash
    proc = _swap(stack, "big", 0, stack["clone"])
    assert proc.returncode != 0 and "step containers, more than the 16 one build may have" in proc.stderr, (
        proc.stderr)

