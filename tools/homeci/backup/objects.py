"""Kubernetes objects in the archive: Secrets of the release namespace, the namespaces themselves and
what the pipelines deployed in their target namespaces — with the fields a cluster assigns removed,
so they can be created again on another cluster."""

from __future__ import annotations

from typing import Any

from homeci.backup.script import SCRIPT

APP_KINDS = ("ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "Ingress")


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` that can be created on another cluster (a Service without its addresses)."""
    out: dict[str, Any] = SCRIPT.clean(obj)
    if obj.get("kind") == "Service":
        spec = dict(out.get("spec") or {})
        for key in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
            spec.pop(key, None)
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec.get("ports") or []]
        out["spec"] = spec
    return out


def stack_secrets(api: Any, namespace: str) -> list[dict[str, Any]]:
    """Every Secret in ``namespace`` but Helm's release records and ServiceAccount tokens."""
    from kubernetes import client

    items = client.CoreV1Api(api).list_namespaced_secret(namespace).items
    out = []
    for s in items:
        d = api.sanitize_for_serialization(s)
        d["apiVersion"], d["kind"] = "v1", "Secret"
        if not SCRIPT.keep_secret(d):
            continue
        out.append(clean(d))
    return sorted(out, key=lambda o: str(o["metadata"]["name"]))


def namespace_objects(api: Any, names: list[str]) -> list[dict[str, Any]]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api)
    out = []
    for name in names:
        try:
            ns = core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": dict(ns.metadata.labels or {})}})
    return out


def app_objects(api: Any, namespaces: list[str]) -> list[dict[str, Any]]:
    """What pipelines deployed in ``namespaces``: their Deployments, StatefulSets, Services, Ingresses,
    ConfigMaps and Secrets — not those Helm manages (drone-pipelines' own objects are reinstalled with
    it), not the namespace's CA ConfigMap Kubernetes publishes, not ServiceAccount tokens."""
    from kubernetes import client

    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    lists = (("v1", "ConfigMap", core.list_namespaced_config_map),
             ("v1", "Secret", core.list_namespaced_secret),
             ("v1", "Service", core.list_namespaced_service),
             ("apps/v1", "Deployment", apps.list_namespaced_deployment),
             ("apps/v1", "StatefulSet", apps.list_namespaced_stateful_set),
             ("networking.k8s.io/v1", "Ingress", net.list_namespaced_ingress))
    out = []
    for ns in namespaces:
        for api_version, kind, lister in lists:
            for item in lister(ns).items:
                d = api.sanitize_for_serialization(item)
                d["apiVersion"], d["kind"] = api_version, kind
                meta = d.get("metadata") or {}
                labels = meta.get("labels") or {}
                helm = labels.get("app.kubernetes.io/managed-by") == "Helm"
                if helm or meta.get("name") == "kube-root-ca.crt":
                    continue
                if kind == "Secret" and not SCRIPT.keep_secret(d):
                    continue
                out.append(clean(d))
    return out
