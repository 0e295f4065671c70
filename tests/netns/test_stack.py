"""The umbrella on the real node: installed with ``helm --wait`` (Helm 3) into a restricted namespace,
every workload's real pods Ready, the components answering through Traefik from the host (forwarder +
the stack's CA), the registry serving a push over TLS, and the node's containerd pulling from
``registry.<domain>`` with the CA the node-trust DaemonSet wrote (no insecure setting anywhere)."""

from __future__ import annotations

import base64
import json
import tarfile
import time
from pathlib import Path

import pytest
from kubernetes import client

from homeci.cluster.install import install_stack, read_stack, traefik_ip
from homeci.cluster.netns import NetnsCluster
from homeci.errors import HomeciError
from homeci.flow import stack as flowstack
from homeci.flow.clients import Registry, push_oci_layout
from homeci_testing.clusters import create_namespace, delete_namespace, python_pod, wait_pod
from homeci_testing.realprog import PublicNames
from homeci_testing.support import NAMESPACE, RELEASE

TEST_REPO = "homeci-test/pause"


@pytest.fixture(scope="module")
def installed(netns_cluster: NetnsCluster, tmp_path_factory: pytest.TempPathFactory) -> flowstack.Stack:
    try:
        install_stack(netns_cluster, major=3, timeout="10m", pipelines=False)
    except HomeciError as exc:
        if "recipe" in str(exc) or "not installed" in str(exc):
            pytest.skip(f"the stack's images cannot be built here: {exc}")
        raise
    st: flowstack.Stack = read_stack(netns_cluster, tmp_path_factory.mktemp("stack"))
    return st


def test_every_workload_has_ready_real_pods(netns_cluster: NetnsCluster, installed: flowstack.Stack) -> None:
    api = netns_cluster.api()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    ns = NAMESPACE
    labels = core.read_namespace(ns).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = apps.list_namespaced_deployment(ns).items + apps.list_namespaced_stateful_set(ns).items
    assert workloads
    for w in workloads:
        assert (w.status.ready_replicas or 0) == w.spec.replicas, f"{w.kind} {w.metadata.name} not ready"
    pods = core.list_namespaced_pod(ns).items
    running = [p for p in pods if p.status.phase == "Running"]
    assert running and all(all(c.ready for c in p.status.container_statuses) for p in running)
    assert all(p.spec.node_name == netns_cluster.layout.node_name for p in running)
    # helm --wait does not cover the node-trust DaemonSet's readiness (its probe runs every 30 s).
    selector = f"app.kubernetes.io/instance={RELEASE}"
    deadline = time.monotonic() + 90
    while True:
        ds = apps.list_daemon_set_for_all_namespaces(label_selector=selector).items
        waiting = [d.metadata.name for d in ds if d.status.number_ready != d.status.desired_number_scheduled]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ds and not waiting, f"DaemonSets not ready: {waiting}"
    assert all(d.status.desired_number_scheduled == 1 for d in ds)


def test_components_answer_through_traefik_from_the_host(installed: flowstack.Stack) -> None:
    web = installed.web
    assert isinstance(web, PublicNames)
    git = web.request("GET", installed.url("git") + "/")
    assert git.status == 200 and b"Gogs" in git.body
    ci = web.request("GET", installed.url("ci") + "/healthz")
    assert ci.status == 200
    reg = web.request("GET", installed.url("registry") + "/v2/")
    assert reg.status == 401 and "basic" in reg.headers.get("www-authenticate", "").lower()
    peer = web.tls_peer(installed.hosts["git"])  # verified against the stack's CA only
    assert peer


def _pause_layout() -> tuple[dict[str, bytes], bytes]:
    from homeci import images

    archive = images.archive_path(images.PAUSE_IMAGE)
    blobs: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        for m in tar.getmembers():
            if m.name.startswith("blobs/sha256/") and m.isfile():
                blobs["sha256:" + m.name.rsplit("/", 1)[1]] = tar.extractfile(m).read()  # type: ignore[union-attr]
    manifest = blobs[index["manifests"][0]["digest"]]
    return blobs, manifest


@pytest.fixture(scope="module")
def pushed(installed: flowstack.Stack) -> str:
    registry = Registry(installed.web, installed.url("registry"), installed.registry_user,
                        installed.registry_password)
    blobs, manifest = _pause_layout()
    return push_oci_layout(registry, blobs, manifest, TEST_REPO, "1")


def test_registry_accepts_a_push_and_serves_the_pull_over_tls(installed: flowstack.Stack,
                                                              pushed: str) -> None:
    registry = Registry(installed.web, installed.url("registry"), installed.registry_user,
                        installed.registry_password)
    found = registry.manifest(TEST_REPO, "1")
    assert found is not None and found[0] == pushed
    layer = found[1]["layers"][0]["digest"]
    assert registry.blob(TEST_REPO, layer)


def test_node_trust_lets_containerd_pull_from_the_registry(netns_cluster: NetnsCluster,
                                                           installed: flowstack.Stack, pushed: str) -> None:
    host = installed.hosts["registry"]
    hosts_toml = netns_cluster.dir / "fs" / "etc-upper" / "containerd" / "certs.d" / host / "hosts.toml"
    deadline = time.monotonic() + 120
    while not hosts_toml.is_file() and time.monotonic() < deadline:
        time.sleep(1)
    assert hosts_toml.is_file(), f"node-trust DaemonSet did not write {hosts_toml}"
    text = hosts_toml.read_text()
    assert "skip_verify" not in text and "insecure" not in text.lower() and "ca =" in text
    api = netns_cluster.api()
    core = client.CoreV1Api(api)
    ns = "t-node-pull"
    create_namespace(api, ns)
    try:
        auth = base64.b64encode(f"{installed.registry_user}:{installed.registry_password}".encode()).decode()
        cfg = {"auths": {host: {"auth": auth}}}
        core.create_namespaced_secret(ns, {
            "metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(cfg).encode()).decode()}})
        core.create_namespaced_pod(ns, {
            "metadata": {"name": "pulled"},
            "spec": {"imagePullSecrets": [{"name": "pull"}], "enableServiceLinks": False,
                     "automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "pause", "image": f"{host}/{TEST_REPO}:1",
                                     "imagePullPolicy": "Always",
                                     "resources": {"limits": {"memory": "16Mi"}},
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}})
        pod = wait_pod(api, ns, "pulled", timeout=120)
        assert pod.status.container_statuses[0].image_id.endswith(pushed)
    finally:
        delete_namespace(api, ns)




def test_pods_reach_the_public_names_with_the_ca(netns_cluster: NetnsCluster,
                                                 installed: flowstack.Stack) -> None:
    """What pipeline steps do: resolve git.<domain> (CoreDNS rewrite to Traefik) and verify TLS."""
    api = netns_cluster.api()
    core = client.CoreV1Api(api)
    ns = "t-public-names"
    create_namespace(api, ns)
    try:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "ca"},
                                               "data": {"ca.crt": installed.ca_file.read_text()}})
        script = ("import socket, ssl, urllib.request\n"
                  "ctx = ssl.create_default_context(cafile='/ca/ca.crt')\n"
                  f"for host in ('{installed.hosts['git']}', '{installed.hosts['registry']}'):\n"
                  "    try:\n"
                  "        r = urllib.request.urlopen(f'https://{host}/', context=ctx, timeout=10)\n"
                  "        print(host, socket.gethostbyname(host), r.status)\n"
                  "    except urllib.error.HTTPError as e:\n"
                  "        print(host, socket.gethostbyname(host), e.code)\n")
        core.create_namespaced_pod(ns, python_pod(
            "names", script, volumes=[{"name": "ca", "configMap": {"name": "ca"}}],
            mounts=[{"name": "ca", "mountPath": "/ca", "readOnly": True}]))
        wait_pod(api, ns, "names", phase="Succeeded")
        logs = core.read_namespaced_pod_log("names", ns)
        ip = traefik_ip(netns_cluster.api(), RELEASE, NAMESPACE)
        assert f"{installed.hosts['git']} {ip} 200" in logs, logs
        assert f"{installed.hosts['registry']} {ip} " in logs, logs  # any HTTP answer: TLS verified
    finally:
        delete_namespace(api, ns)


def test_helm_test_hooks_pass_on_the_real_node(netns_cluster: NetnsCluster,
                                               installed: flowstack.Stack) -> None:
    """`helm test homeci`: each public host over TLS with only the homeci CA, Drone → Gogs, registry auth."""
    from homeci.helm import Helm

    done = Helm(3, kubeconfig=netns_cluster.kubeconfig).test(RELEASE, namespace=NAMESPACE)
    out = done.stdout
    assert "FAIL" not in out and " 0 failed" in out, f"helm test {RELEASE}: {out}"
    for host in installed.hosts.values():
        assert f"https://{host}" in out, f"helm test did not check {host}: {out}"


def test_helm_test_pod_fails_clearly_with_a_foreign_ca(netns_cluster: NetnsCluster,
                                                       installed: flowstack.Stack, tmp_path: Path) -> None:
    """The release's own test Pod (from `helm get hooks`), given another CA: it must fail and say the
    certificate is not trusted by the homeci CA."""
    import yaml

    from homeci import ca
    from homeci.helm import Helm

    api = netns_cluster.api()
    core = client.CoreV1Api(api)
    ns = NAMESPACE
    hooks = Helm(3, kubeconfig=netns_cluster.kubeconfig).get_hooks(RELEASE, namespace=ns)
    pod = next(o for o in yaml.safe_load_all(hooks) if o and o["kind"] == "Pod")
    pod["metadata"] = {"name": "foreign-ca-check", "namespace": ns}
    other = ca.init(tmp_path / "other-ca")
    core.create_namespaced_config_map(ns, {"metadata": {"name": "foreign-ca"},
                                           "data": {"ca.crt": other.cert.read_text()}})
    for vol in pod["spec"]["volumes"]:
        if vol["name"] == "ca":
            vol["configMap"]["name"] = "foreign-ca"
    try:
        core.create_namespaced_pod(ns, pod)
        wait_pod(api, ns, "foreign-ca-check", phase="Failed")  # raises, with the logs, if it succeeds
        logs = core.read_namespaced_pod_log("foreign-ca-check", ns)
        assert "certificate not trusted by the homeci CA" in logs, logs
    finally:
        core.delete_namespaced_pod("foreign-ca-check", ns, grace_period_seconds=0)
        core.delete_namespaced_config_map("foreign-ca", ns)
