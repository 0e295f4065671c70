"""The real node's promises (provider netns): a Ready real node, restricted pods, Services, DNS, storage, and
the network namespace and cgroup containment."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from homeci.cluster.install import traefik_ip
from homeci.cluster.netns import NetnsCluster
from homeci.cluster.sandbox import cgroups
from homeci_testing.clusters import TEST_IMAGE, python_pod, wait_pod
from homeci_testing.support import NAMESPACE, RELEASE

HTTP_SERVER = ("import http.server, os\n"
               "class H(http.server.BaseHTTPRequestHandler):\n"
               "    def do_GET(self):\n"
               "        self.send_response(200); self.end_headers(); self.wfile.write(b'hello from ' + "
               "os.environ['HOSTNAME'].encode())\n"
               "http.server.HTTPServer(('', 8080), H).serve_forever()\n")


def test_node_is_ready_real_and_versioned(netns_cluster: NetnsCluster, api: Any) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == [netns_cluster.layout.node_name]
    node = nodes[0]
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.node_info.kubelet_version == "v1.37.2"
    assert node.status.node_info.container_runtime_version.startswith("containerd://2.")
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})


def test_images_load_imports_only_what_the_node_lacks(netns_cluster: NetnsCluster, monkeypatch: Any) -> None:
    from homeci import images
    from homeci.cluster.netns.netnscluster import archive_digest

    archive = images.build([TEST_IMAGE])[images.normalize(TEST_IMAGE)]
    held = netns_cluster.image_digests()
    assert held.get(images.normalize(TEST_IMAGE)) == archive_digest(archive), (
        f"containerd holds {TEST_IMAGE} as {held.get(images.normalize(TEST_IMAGE))}, its archive {archive} "
        f"names {archive_digest(archive)}")
    imported: list[Path] = []
    real = NetnsCluster._import_one

    def spy(self: NetnsCluster, path: Path) -> Path:
        imported.append(path)
        return real(self, path)

    monkeypatch.setattr(NetnsCluster, "_import_one", spy)
    netns_cluster.load_images([TEST_IMAGE])
    assert imported == [], f"{TEST_IMAGE} is held with the archive's content, yet imported again: {imported}"
    netns_cluster._ctr("images", "rm", images.normalize(TEST_IMAGE))
    assert images.normalize(TEST_IMAGE) in netns_cluster.load_images([TEST_IMAGE])
    assert imported == [archive], f"after removing {TEST_IMAGE}: imported {imported}, not its archive"


def test_cgroups_nest_under_the_harness(netns_cluster: NetnsCluster) -> None:
    parent = netns_cluster.sandbox.parent
    assert parent is not None
    own = cgroups.own_paths()
    base = own.get("memory", own.get(""))
    assert base is not None and parent.startswith(base.rstrip("/") + "/homeci-")
    for h in cgroups.hierarchies():
        if h.v2 and not (h.mountpoint / "cgroup.controllers").read_text().strip():
            continue  # hybrid host's controller-less mount: runc still nests there, kubelet does not
        assert (h.mountpoint / parent.lstrip("/") / "kubepods").is_dir(), f"{h.mountpoint}: no kubepods"
    # Daemons, shims and containers all live in the subtree (so the host's limits on homeci apply).
    names = set()
    for pid in cgroups.pids(cgroups.hierarchies(), parent):
        with contextlib.suppress(OSError):
            names.add(Path(f"/proc/{pid}/comm").read_text().strip())
    expected = {"etcd", "kube-apiserver", "kubelet", "kube-proxy", "containerd", "containerd-shim", "pause",
                "coredns"}
    assert expected <= names, f"not in {parent}: {sorted(expected - names)}"


def test_no_route_out_of_the_namespace(netns_cluster: NetnsCluster) -> None:
    holder = netns_cluster.pids()["holder"]
    out = subprocess.run(["nsenter", "-t", str(holder), "-n", "ip", "route", "get", "8.8.8.8"],
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "unreachable" in out.stderr.lower(), out


def test_restricted_pod_runs_and_noncompliant_pod_is_refused(api: Any, namespace: str) -> None:
    core = client.CoreV1Api(api)
    script = ("import os; s=open('/proc/self/status').read();"
              "print([l for l in s.splitlines() if l.split(':')[0] in ('Seccomp','NoNewPrivs','CapEff')],"
              " os.getuid())")
    core.create_namespaced_pod(namespace, python_pod("restricted", script))
    wait_pod(api, namespace, "restricted", phase="Succeeded")
    logs = core.read_namespaced_pod_log("restricted", namespace)
    assert "'Seccomp:\\t2'" in logs and "'NoNewPrivs:\\t1'" in logs and "CapEff:\\t0000000000000000" in logs
    assert logs.strip().endswith("1000")
    bad = python_pod("privileged", "print(1)")
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    try:
        core.create_namespaced_pod(namespace, bad)
        raise AssertionError("a privileged pod was admitted in a restricted namespace")
    except ApiException as exc:
        assert exc.status == 403 and "restricted" in exc.body


def test_service_and_cluster_dns(api: Any, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, python_pod("web", HTTP_SERVER, port=8080, restart="Always"))
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    wait_pod(api, namespace, "web", ready=True)
    fqdn = f"web.{namespace}.svc.cluster.local"
    client_script = ("import socket, urllib.request, time\n"
                     f"ip = socket.gethostbyname('{fqdn}')\n"
                     "for _ in range(30):\n"
                     "    try:\n"
                     f"        body = urllib.request.urlopen('http://{fqdn}/', timeout=3).read()\n"
                     "        print(ip, body.decode()); break\n"
                     "    except OSError: time.sleep(1)\n"
                     "try:\n"
                     "    socket.gethostbyname('example.com'); print('OUTSIDE RESOLVED')\n"
                     "except OSError: print('outside: no answer')\n")
    core.create_namespaced_pod(namespace, python_pod("client", client_script))
    wait_pod(api, namespace, "client", phase="Succeeded")
    logs = core.read_namespaced_pod_log("client", namespace)
    svc_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert f"{svc_ip} hello from web" in logs, logs
    assert "outside: no answer" in logs, logs


def test_pvc_binds_and_a_nonroot_fsgroup_pod_writes_it(netns_cluster: NetnsCluster, api: Any,
                                                        namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    script = ("import os; open('/data/hello','w').write('ok'); st=os.stat('/data');"
              "print('gid', st.st_gid, 'uid', os.getuid(), open('/data/hello').read())")
    core.create_namespaced_pod(namespace, python_pod(
        "writer", script, fs_group=2000,
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        mounts=[{"name": "data", "mountPath": "/data"}]))
    wait_pod(api, namespace, "writer", phase="Succeeded")
    assert "gid 2000 uid 1000 ok" in core.read_namespaced_pod_log("writer", namespace)
    pvc = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert pvc.status.phase == "Bound"
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    assert Path(pv.spec.local.path, "hello").read_text() == "ok"
    assert netns_cluster.dir in Path(pv.spec.local.path).parents


def test_public_names_resolve_to_traefik_inside_pods(netns_cluster: NetnsCluster, api: Any,
                                                     namespace: str) -> None:
    """CoreDNS answers git.<domain> (and any *.<domain>) with the Traefik Service's address."""
    script = ("import socket\n"
              f"for n in ('git.{netns_cluster.domain()}', 'myapp.{netns_cluster.domain()}'):\n"
              "    try: print(n, socket.gethostbyname(n))\n"
              "    except OSError as e: print(n, 'ERR', e)\n")
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, python_pod("names", script))
    wait_pod(api, namespace, "names", phase="Succeeded")
    logs = core.read_namespaced_pod_log("names", namespace)
    ip = traefik_ip(netns_cluster.api(), RELEASE, NAMESPACE)
    if ip is None:
        # Without the stack installed the rewrite target does not exist yet: the name must not leak out.
        assert "ERR" in logs, logs
    else:
        assert logs.count(ip) == 2, logs
