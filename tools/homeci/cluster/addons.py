"""Cluster add-ons the real providers install themselves: CoreDNS (the netns node's own Deployment; kind's
CoreDNS gets the same Corefile), the default StorageClass and its pool of ``local`` PersistentVolumes.

Storage: a ``kubernetes.io/no-provisioner`` StorageClass with ``WaitForFirstConsumer`` and a pool of
pre-created ``local`` PVs on each node. Unlike hostPath PVs, local volumes are re-owned for a pod's
``fsGroup``, so non-root pods can write them (real-node.md).

Public names inside the cluster: CoreDNS rewrites ``<domain>`` and every ``*.<domain>`` to the Traefik
Service's name, so pods reach the stack by its public names without knowing Traefik's address.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from homeci import kubeaccess

STORAGE_CLASS = "standard"
VOLUME_POOL = 24
VOLUME_CAPACITY = "100Gi"
COREDNS = "coredns"
APP_LABEL = {"k8s-app": "kube-dns"}
CLUSTER_DOMAIN = "cluster.local"
POOL_LABEL = "homeci.dev/local-pool"


def rewrite_rule(domain: str, traefik_service: str) -> str:
    """The Corefile block answering ``<domain>`` and every ``*.<domain>`` with the Traefik Service: the
    same rule the umbrella renders for k3s (``corednsCustom``)."""
    pattern = "(.+\\.)?" + domain.replace(".", "\\.") + "\\.$"
    return f"rewrite stop {{\n  name regex {pattern} {traefik_service.rstrip('.')}.\n  answer auto\n}}\n"


def corefile(*, domain: str, traefik_service: str, upstream: bool = False) -> str:
    """CoreDNS answering the cluster's names, and ``<domain>`` with every ``*.<domain>`` as the Traefik
    Service. ``upstream`` forwards other names to the node's resolver (a machine with internet); offline
    they answer SERVFAIL at once."""
    rule = "".join(f"    {line}\n" for line in rewrite_rule(domain, traefik_service).splitlines())
    forward = "    forward . /etc/resolv.conf\n" if upstream else ""
    return f""".:53 {{
    errors
    health {{
        lameduck 2s
    }}
    ready
{rule}    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
{forward}    cache 30
    loop
    reload
    loadbalance
}}
"""


def traefik_service(release: str, namespace: str) -> str:
    return f"{release}-traefik.{namespace}.svc.{CLUSTER_DOMAIN}"


def coredns_objects(*, image: str, domain: str, traefik_service: str,
                    service_ip: str) -> list[dict[str, Any]]:
    ns = "kube-system"
    meta = {"name": COREDNS, "namespace": ns}
    restricted = {
        "runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "homeci:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "homeci:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "homeci:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": COREDNS, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"Corefile": corefile(domain=domain, traefik_service=traefik_service)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": APP_LABEL},
         "spec": {
             "replicas": 1, "selector": {"matchLabels": APP_LABEL},
             "template": {
                 "metadata": {"labels": APP_LABEL},
                 "spec": {
                     "serviceAccountName": COREDNS, "priorityClassName": "system-cluster-critical",
                     "dnsPolicy": "Default", "enableServiceLinks": False,
                     "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": COREDNS, "image": image, "imagePullPolicy": "Never",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                       "limits": {"memory": "128Mi"}},
                         "securityContext": restricted,
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                                           "initialDelaySeconds": 10, "periodSeconds": 10},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                            "periodSeconds": 2},
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": COREDNS}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": ns, "labels": APP_LABEL},
         "spec": {"clusterIP": service_ip, "selector": APP_LABEL,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
    ]


def storage_objects(*, pool: str, volumes: Mapping[str, str],
                    per_node: int = VOLUME_POOL) -> list[dict[str, Any]]:
    """The StorageClass and ``per_node`` local PVs on each node (``volumes``: node name -> the folder on
    that node holding its volumes), labelled with the pool name."""
    objs: list[dict[str, Any]] = [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }]
    for n, (node, folder) in enumerate(sorted(volumes.items())):
        for i in range(per_node):
            name = f"{pool}-local-{i:02d}" if len(volumes) == 1 else f"{pool}-{n}-local-{i:02d}"
            objs.append({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {POOL_LABEL: pool}},
                "spec": {
                    "capacity": {"storage": VOLUME_CAPACITY},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": "Filesystem",
                    "local": {"path": volume_dir(folder, i)},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                },
            })
    return objs


def volume_dir(folder: str, i: int) -> str:
    return str(PurePosixPath(folder) / f"pv-{i:02d}")


def recycle_volumes(api: Any, pool: str, empty: Callable[[str, str], None]) -> list[str]:
    """Make the pool's Released PVs (their claim was deleted) Available again, emptied by
    ``empty(node, path)``."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    done = []
    for pv in core.list_persistent_volume(label_selector=f"{POOL_LABEL}={pool}").items:
        if pv.status.phase != "Released" or not pv.spec.local:
            continue
        terms = pv.spec.node_affinity.required.node_selector_terms if pv.spec.node_affinity else []
        node = terms[0].match_expressions[0].values[0] if terms else ""
        empty(node, pv.spec.local.path)
        core.patch_persistent_volume(pv.metadata.name, {"spec": {"claimRef": None}})
        done.append(pv.metadata.name)
    return done


def empty_local_folder(path: str) -> None:
    """Empty a volume folder on this machine and give it back to root, mode 0755."""
    folder = PurePosixPath(path)
    for child in os.scandir(folder) if os.path.isdir(folder) else []:
        if child.is_dir(follow_symlinks=False):
            shutil.rmtree(child.path)
        else:
            os.unlink(child.path)
    os.chmod(folder, 0o755)
    os.chown(folder, 0, 0)


def apply_storage(api: Any, *, pool: str, volumes: Mapping[str, str]) -> None:
    kubeaccess.apply(api, storage_objects(pool=pool, volumes=volumes))
