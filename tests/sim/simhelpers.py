"""Helpers for the simulated-cluster tests: namespaces, releases, snapshots, diagnostics, reviews."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from kubernetes import client
from kubernetes.client.rest import ApiException

from homeci.cluster import SimCluster
from homeci.helm import Helm, HelmError
from homeci.manifests import parse
from homeci_testing import support

ROOT = support.ROOT
# Overridable (HOMECI_TEST_CHARTS): a broken copy of a chart is tested without touching the checkout.
UMBRELLA = support.UMBRELLA  # HOMECI_TEST_CHARTS renders another copy of charts/
PIPELINES = support.PIPELINES
RELEASE = support.RELEASE
PSS_MODES = ("enforce", "audit", "warn")


# -- namespaces --------------------------------------------------------------------------------------

def ensure_restricted_namespace(api: Any, name: str, level: str = "restricted") -> None:
    labels = {f"pod-security.kubernetes.io/{m}": level for m in PSS_MODES}
    labels.update({f"pod-security.kubernetes.io/{m}-version": "latest" for m in PSS_MODES})
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels}})


def delete_namespace(api: Any, name: str, timeout: float = 120, wait: bool = True) -> None:
    core = client.CoreV1Api(api)
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"Namespace/{name} still terminating after {timeout:.0f}s")


def namespace_labels(api: Any, name: str) -> dict[str, str]:
    return dict(client.CoreV1Api(api).read_namespace(name).metadata.labels or {})


# -- releases ----------------------------------------------------------------------------------------

@dataclass
class Deployments:
    """Helm releases a test installed; ``cleanup`` uninstalls them and removes cluster-scoped leftovers."""

    cluster: SimCluster
    releases: list[tuple[Helm, str, str]] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=set)

    def track(self, helm: Helm, release: str, namespace: str, manifest: str = "") -> None:
        if (helm, release, namespace) not in self.releases:
            self.releases.append((helm, release, namespace))
        for m in parse(manifest):
            if m.kind == "Namespace":
                self.namespaces.add(m.name)

    def cleanup(self, api: Any) -> None:
        for helm, release, namespace in reversed(self.releases):
            try:
                helm.uninstall(release, namespace=namespace, timeout="2m")
            except HelmError as exc:
                if "not found" not in str(exc):
                    raise
        for ns in sorted(self.namespaces):
            delete_namespace(api, ns)


def diagnose(api: Any, namespaces: Iterable[str]) -> str:
    """Why a --wait failed: warning events (FailedCreate from Pod Security, ...) and unready workloads."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    lines: list[str] = []
    for ns in sorted(set(namespaces)):
        try:
            events = core.list_namespaced_event(ns).items
        except ApiException:
            continue
        seen: set[str] = set()
        for ev in events:
            if ev.type != "Warning":
                continue
            message = str(ev.message).replace("(combined from similar events): ", "")
            message = re.sub(r'pods "[^"]+"', "pods", message)
            text = f"{ev.involved_object.kind}/{ev.involved_object.name} {ev.reason}: {message}"
            if text not in seen:
                seen.add(text)
                lines.append(f"[{ns}] {text}")
        lines += [f"[{ns}] {w}" for w in unready_workloads(apps, ns)]
    return "\n".join(lines[:30]) or "(no warning events, every workload ready)"


def unready_workloads(apps: Any, namespace: str) -> list[str]:
    problems = []
    for d in apps.list_namespaced_deployment(namespace).items:
        conds = {c.type: c.status for c in (d.status.conditions or [])}
        if conds.get("Available") != "True" or (d.status.available_replicas or 0) < (d.spec.replicas or 0):
            problems.append(f"Deployment/{d.metadata.name} not available "
                            f"({d.status.available_replicas or 0}/{d.spec.replicas})")
    for s in apps.list_namespaced_stateful_set(namespace).items:
        if (s.status.ready_replicas or 0) < (s.spec.replicas or 0):
            problems.append(f"StatefulSet/{s.metadata.name} not ready ({s.status.ready_replicas or 0}/"
                            f"{s.spec.replicas})")
    return problems


def helm_install(deps: Deployments, helm: Helm, api: Any, chart: Path, namespace: str, *,
                 release: str = RELEASE, values_files: Sequence[Path] = (),
                 set_values: Sequence[str] = (), upgrade: bool = False, timeout: str = "2m") -> str:
    """Install (or upgrade) with --wait; on failure fail the test with helm's error and the cluster's view."""
    deps.track(helm, release, namespace)
    try:
        if upgrade:
            helm.upgrade(release, chart, namespace=namespace, values_files=values_files,
                         set_values=set_values, timeout=timeout, install=False)
        else:
            helm.install(release, chart, namespace=namespace, values_files=values_files,
                         set_values=set_values, timeout=timeout)
    except HelmError as exc:
        extra = [namespace, *deps.namespaces, f"{release}-builds"]
        raise AssertionError(f"{helm} {'upgrade' if upgrade else 'install'} {release} into {namespace} "
                             f"failed: {exc}\ncluster says:\n{diagnose(api, extra)}") from None
    manifest = helm.get_manifest(release, namespace=namespace)
    deps.track(helm, release, namespace, manifest)
    return manifest


# -- snapshots ---------------------------------------------------------------------------------------

def secret_data(api: Any, namespace: str) -> dict[str, dict[str, str]]:
    """Secret name -> data, excluding Helm's own release records."""
    return {s.metadata.name: dict(s.data or {})
            for s in client.CoreV1Api(api).list_namespaced_secret(namespace).items
            if s.type != "helm.sh/release.v1"}


def configmap_data(api: Any, namespace: str) -> dict[str, dict[str, str]]:
    return {c.metadata.name: {**(c.data or {}), **(c.binary_data or {})}
            for c in client.CoreV1Api(api).list_namespaced_config_map(namespace).items}


def pod_templates(api: Any, namespace: str) -> dict[str, tuple[int, Any]]:
    """Workload -> (metadata.generation, pod template) for Deployments, StatefulSets, DaemonSets."""
    apps = client.AppsV1Api(api)
    sanitize = client.ApiClient().sanitize_for_serialization
    out: dict[str, tuple[int, Any]] = {}
    for kind, lister in (("Deployment", apps.list_namespaced_deployment),
                         ("StatefulSet", apps.list_namespaced_stateful_set),
                         ("DaemonSet", apps.list_namespaced_daemon_set)):
        for obj in lister(namespace).items:
            out[f"{kind}/{obj.metadata.name}"] = (obj.metadata.generation, sanitize(obj.spec.template))
    return out


def diff_maps(kind: str, before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changes.append(f"{kind}/{name} removed")
        elif name not in before:
            changes.append(f"{kind}/{name} added")
        else:
            for key in sorted(set(before[name]) | set(after[name])):
                if before[name].get(key) != after[name].get(key):
                    changes.append(f"{kind}/{name} data[{key}] changed")
    return changes


def certificate(api: Any, namespace: str, secret: str, key: str = "tls.crt") -> x509.Certificate:
    s = client.CoreV1Api(api).read_namespaced_secret(secret, namespace)
    assert s.data and key in s.data, f"Secret/{secret} in {namespace} has no data[{key}]"
    return x509.load_pem_x509_certificate(base64.b64decode(s.data[key]))


def dns_names(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(ext.value.get_values_for_type(x509.DNSName))


def manifest_objects(stream: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(stream) if isinstance(d, dict) and d.get("kind") == kind]


def dry_run_manifest(helm: Helm, release: str, namespace: str, *, upgrade: bool) -> str:
    """The manifest ``--dry-run=server`` would apply (from ``--output json``, without NOTES)."""
    extra = ["--output", "json"]
    if upgrade:
        out = helm.upgrade(release, UMBRELLA, namespace=namespace, dry_run="server", install=False,
                           extra=extra).stdout
    else:
        out = helm.install(release, UMBRELLA, namespace=namespace, dry_run="server", extra=extra).stdout
    data = json.loads(out)
    manifest = data.get("manifest")
    assert isinstance(manifest, str), f"{helm} --dry-run=server --output json has no manifest: {sorted(data)}"
    return manifest


# -- access reviews ----------------------------------------------------------------------------------

def can(api: Any, sa_namespace: str, sa: str, verb: str, resource: str, *, namespace: str | None,
        group: str = "", subresource: str = "", name: str = "") -> bool:
    user = f"system:serviceaccount:{sa_namespace}:{sa}"
    attrs: dict[str, str] = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attrs["namespace"] = namespace
    if subresource:
        attrs["subresource"] = subresource
    if name:
        attrs["name"] = name
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}",
                       "system:authenticated"],
            "resourceAttributes": attrs,
        },
    }
    review = client.AuthorizationV1Api(api).create_subject_access_review(body)
    return bool(review.status.allowed)
