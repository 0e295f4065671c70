"""Objects the local cluster installs itself: CoreDNS (a Deployment), the default StorageClass and its
pool of ``local`` PersistentVolumes.

Storage: a ``kubernetes.io/no-provisioner`` StorageClass with ``WaitForFirstConsumer`` and a pool of
pre-created ``local`` PVs on the node. Unlike hostPath PVs, local volumes are re-owned for a pod's
``fsGroup``, so non-root pods can write them (real-node.md).

Public names inside the cluster: CoreDNS rewrites ``<domain>`` and every ``*.<domain>`` to the Traefik
Service's name, so pods reach the stack by its public names without knowing Traefik's address.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from homeci.cluster.local import layout as L

STORAGE_CLASS = "standard"
VOLUME_POOL = 24
VOLUME_CAPACITY = "100Gi"
COREDNS = "coredns"
APP_LABEL = {"k8s-app": "kube-dns"}


def corefile(*, domain: str, traefik_service: str) -> str:
    pattern = r"(.*\.)?" + re.escape(domain) + r"\.?$"
    return f""".:53 {{
    errors
    health {{
        lameduck 2s
    }}
    ready
    rewrite stop {{
        name regex {pattern} {traefik_service}.
        answer auto
    }}
    kubernetes {L.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loop
    reload
    loadbalance
}}
"""


def coredns_objects(*, image: str, domain: str, traefik_service: str) -> list[dict[str, Any]]:
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
         "spec": {"clusterIP": L.DNS_SERVICE_IP, "selector": APP_LABEL,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
    ]


def storage_objects(*, node: str, volumes: Path, cluster: str) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }]
    for i in range(VOLUME_POOL):
        objs.append({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{cluster}-local-{i:02d}", "labels": {"homeci.dev/local-pool": cluster}},
            "spec": {
                "capacity": {"storage": VOLUME_CAPACITY},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": STORAGE_CLASS,
                "volumeMode": "Filesystem",
                "local": {"path": str(volume_dir(volumes, i))},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            },
        })
    return objs


def volume_dir(volumes: Path, i: int) -> Path:
    return volumes / f"pv-{i:02d}"
