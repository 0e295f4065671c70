"""Every provider keeps the same contract (homeci.cluster.provider.Cluster): status, kubeconfig, images,
install and down answer the same way whether the cluster is simulated (sim), a real node in a network
namespace (netns) or kind. Runs on the session's cluster of ``--provider`` with the stack installed;
``nox -s test`` runs it on sim, ``nox -s integration [-- --provider kind]`` on the real ones, before
tests/integration (which then uses the same stack after its stop and start). ``test_zz_down.py`` deletes the
cluster: destructive, so it runs last of all."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from kubernetes import client

from homeci import contract, kubeaccess, toolchain
from homeci.cluster import Status
from homeci.cluster.install import install_stack
from homeci.flow.setup import Prepared
from homeci_testing.clusters import TEST_IMAGE
from homeci_testing.daytwo import wait_ready, wait_routed
from homeci_testing.support import run_cli

STATUS_FIELDS = {f.name for f in dataclasses.fields(Status)}


def _cli(real_stack: Prepared, *args: str) -> str:
    cluster = real_stack.cluster
    result = run_cli("cluster", *args, "--provider", cluster.provider, "--name", cluster.name)
    assert result.exit_code == 0, f"homeci cluster {' '.join(args)}: {result.stderr or result.stdout}"
    return result.stdout


def test_status_reports_the_ready_cluster(real_stack: Prepared) -> None:
    cluster = real_stack.cluster
    st = cluster.status()
    assert st.exists and st.ready, f"{cluster.describe()}: status {st}"
    assert st.provider == cluster.provider and st.name == cluster.name
    assert st.version == toolchain.tool("kube-apiserver").version, f"{cluster.describe()}: {st.version}"
    assert st.nodes >= 1 and st.server and st.server.startswith("https://127.0.0.1:"), f"server {st.server}"
    assert st.processes and all(st.processes.values()), f"processes not running: {st.processes}"
    if cluster.runs_containers:
        assert st.https == f"https://<host>.{cluster.domain()}:{cluster.https_port()}", f"https {st.https}"
    else:
        assert st.https is None, "a simulated cluster answers no public name"


def test_status_json_has_the_same_fields_for_every_provider(real_stack: Prepared) -> None:
    data = json.loads(_cli(real_stack, "status", "--json"))
    assert set(data) == STATUS_FIELDS, f"status --json fields: {sorted(data)}"
    assert data["ready"] is True and isinstance(data["processes"], dict), data
    assert data["kubeconfig"] == str(real_stack.cluster.kubeconfig)


def test_kubeconfig_reaches_the_api_server(real_stack: Prepared) -> None:
    path = _cli(real_stack, "kubeconfig").strip()
    assert path == str(real_stack.cluster.kubeconfig)
    api = kubeaccess.api_client(path)
    kubeaccess.probe(api, path)
    nodes = client.CoreV1Api(api).list_node().items
    assert nodes and all(kubeaccess.node_ready(n) for n in nodes), "every node Ready"


def test_images_load_puts_an_image_on_the_nodes(real_stack: Prepared) -> None:
    cluster = real_stack.cluster
    loaded = cluster.load_images([TEST_IMAGE])
    if cluster.image_source == "source":
        assert TEST_IMAGE in loaded, f"{cluster.describe()}: {TEST_IMAGE} not on every node ({loaded[:5]}…)"
    else:
        assert loaded == [], f"{cluster.describe()}: nothing to load ({cluster.image_source})"
    out = _cli(real_stack, "images", "load", TEST_IMAGE)
    assert ("loaded" in out) == (cluster.image_source == "source"), out


def test_up_reuses_the_running_cluster(real_stack: Prepared) -> None:
    out = _cli(real_stack, "up", "--no-stack")
    assert "already running, reused" in out, out


def _templates(api: Any) -> dict[str, int]:
    apps = client.AppsV1Api(api)
    found = {f"Deployment/{d.metadata.name}": d.metadata.generation
             for d in apps.list_namespaced_deployment(contract.NAMESPACE).items}
    found.update({f"StatefulSet/{s.metadata.name}": s.metadata.generation
                  for s in apps.list_namespaced_stateful_set(contract.NAMESPACE).items})
    return found


def test_install_again_changes_no_workload(real_stack: Prepared) -> None:
    cluster = real_stack.cluster
    before = _templates(cluster.api())
    again = install_stack(cluster)
    assert again.revision > real_stack.installed.revision, f"revision {again.revision}"
    assert _templates(cluster.api()) == before, "the same install must not change a pod template"
    assert again.stack.hosts == real_stack.stack.hosts


def test_stop_and_start_keep_the_cluster(real_stack: Prepared) -> None:
    """A reboot: `stop` ends every process and keeps the state, `start` brings the same cluster back (the
    same objects; where containers run, the stack Ready again by itself)."""
    cluster = real_stack.cluster
    api = cluster.api()
    uid = client.CoreV1Api(api).read_namespace(contract.NAMESPACE).metadata.uid
    out = _cli(real_stack, "stop")
    assert "stopped" in out, out
    st = cluster.status()
    assert st.exists and st.stopped and not st.ready, f"{cluster.describe()} after stop: {st}"
    assert "stopped, state kept" in _cli(real_stack, "status")
    booted = dt.datetime.now(dt.UTC).replace(microsecond=0)  # conditions are stamped in whole seconds
    out = _cli(real_stack, "start")
    assert "started in" in out, out
    st = cluster.status()
    assert st.ready and not st.stopped and all(st.processes.values()), f"after start: {st}"
    api = cluster.api()
    assert client.CoreV1Api(api).read_namespace(contract.NAMESPACE).metadata.uid == uid, "objects lost"
    if not cluster.runs_containers:
        wait_ready(api, timeout=600)
        return
    # Where containers run, every pod must turn Ready after the boot (the statuses written before the
    # shutdown still say Ready until the kubelet reports again), then the stack answer over HTTPS: the later
    # tiers of this run use the same stack.
    wait_ready(api, timeout=600, since=booted)
    wait_routed(real_stack.stack)  # Gogs and Drone answer through Traefik again
