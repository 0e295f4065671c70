"""Two real nodes (kind: ``nox -s integration -- --provider kind`` makes a control plane and a worker):
node trust runs on every node, and an image a pipeline builds on one node is pulled on the other through
``registry.<domain>`` with the CA node trust wrote. Skipped on one-node clusters (netns)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from homeci import contract
from homeci.flow import driver, setup
from homeci_testing.clusters import wait_pod


@pytest.fixture(scope="module")
def nodes(prepared: setup.Prepared) -> list[str]:
    names = sorted(n.metadata.name for n in client.CoreV1Api(prepared.cluster.api()).list_node().items)
    if len(names) < 2:
        pytest.skip(f"{prepared.cluster.describe()} has one node: a second one is needed (--provider kind)")
    return names


def test_node_trust_runs_on_every_node(prepared: setup.Prepared, nodes: list[str]) -> None:
    api = prepared.cluster.api()
    selector = f"app.kubernetes.io/instance={contract.RELEASE},app.kubernetes.io/component=node-trust"
    deadline = time.monotonic() + 120
    while True:
        pods = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=selector).items
        ready = {p.spec.node_name for p in pods
                 if p.status.phase == "Running" and all(c.ready for c in p.status.container_statuses or [])}
        if ready == set(nodes) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ready == set(nodes), f"node-trust pods Ready on {sorted(ready)}, nodes {nodes}"
    exec_in = getattr(prepared.cluster, "exec", None)
    if exec_in is not None:  # kind: read what node trust wrote on each node
        host = prepared.stack.hosts["registry"]
        for node in nodes:
            toml = exec_in(node, f"cat /etc/containerd/certs.d/{host}/hosts.toml")
            assert f'server = "https://{host}"' in toml and "ca = " in toml, f"{node}: hosts.toml {toml!r}"


@contextlib.contextmanager
def _cordoned(api: Any, node: str) -> Iterator[None]:
    core = client.CoreV1Api(api)
    core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        yield
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})


def test_an_image_built_on_one_node_is_pulled_on_the_other(prepared: setup.Prepared, nodes: list[str],
                                                         tmp_path: Path) -> None:
    builder, puller = nodes[0], nodes[1]
    api = prepared.cluster.api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    driver.ensure_repository(prepared.stack, prepared.app)
    repo = driver.prepare(prepared.app, tmp_path, domain=prepared.stack.domain)
    with _cordoned(api, puller):  # the build's pod (and the rollout) can only run on the builder
        rnd = driver.deliver(prepared.stack, prepared.app, repo, f"2.0.0-nodes.{int(time.time())}",
                             timeout=900, progress=lambda line: print(f"[nodes] {line}", flush=True))
    phases = [(p.name, p.status, p.detail[-300:]) for p in rnd.phases]
    assert rnd.ok, f"the build on {builder} failed: {phases}"
    deployment = apps.read_namespaced_deployment(prepared.app.name, prepared.app.namespace)
    served = core.list_namespaced_pod(prepared.app.namespace, label_selector=",".join(
        f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items())).items
    assert {p.spec.node_name for p in served if p.status.phase == "Running"} == {builder}, "rollout node"
    # the same pod template, pinned to the other node, without the Service's labels
    spec = client.ApiClient().sanitize_for_serialization(deployment.spec.template.spec)
    spec["nodeName"] = puller
    name = f"pull-on-{puller}"[:63].rstrip("-")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"homeci.test/pull": "1"}},
           "spec": spec}
    core.create_namespaced_pod(prepared.app.namespace, pod)
    try:
        running = wait_pod(api, prepared.app.namespace, name, ready=True, timeout=180)
        (status,) = running.status.container_statuses
        assert status.image_id, f"pod {name} on {puller}: no image id"
        wanted = spec["containers"][0]["image"]
        assert wanted.startswith(prepared.stack.hosts["registry"] + "/"), f"image {wanted}"
    finally:
        core.delete_namespaced_pod(name, prepared.app.namespace, grace_period_seconds=0)
