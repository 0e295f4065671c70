"""Test support for tiers that talk to a cluster (tests/sim, tests/local, tests/integration, tests/providers):
namespaces, restricted pods and waits, Helm releases a test installs and removes, snapshots of what an
upgrade must keep, diagnostics for a failed ``--wait``, and access reviews."""

from __future__ import annotations

import base64
import contextlib
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

from homeci.helm import Helm, HelmError
from homeci.kubeaccess import PSS_MODES, pss_labels
from homeci.manifests import parse
from homeci_testing.support import RELEASE, UMBRELLA

# A locally built image with a shell-free Python (homeci.images recipe), run as a non-root user.
TEST_IMAGE = "docker.io/library/python:3.13.14-alpine3.24"
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# -- namespaces --------------------------------------------------------------------------------------

def create_namespace(api: Any, name: str, level: str = "restricted") -> None:
    """A new namespace whose Pod Security level (enforce, audit, warn; latest version) is ``level``."""
    labels = pss_labels(level)
    labels.update({f"pod-security.kubernetes.io/{m}-version": "latest" for m in PSS_MODES})
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels}})


def delete_namespace(api: Any, name: str, timeout: float = 120, wait: bool = True,
                     grace_period: int | None = None) -> None:
    delete_namespaces(api, [name], timeout=timeout, wait=wait, grace_period=grace_period)


def delete_namespaces(api: Any, names: Iterable[str], timeout: float = 120, wait: bool = True,
                      grace_period: int | None = None) -> None:
    """Delete every namespace in ``names`` at once, then (``wait``) until all are gone. The namespace
    controller holds each deletion for a fixed 5 s before it starts (kube-controller-manager's
    namespaceDeletionGracePeriod), so one at a time costs 5 s each and together 5 s in all."""
    core = client.CoreV1Api(api)
    pending = []
    for name in dict.fromkeys(names):
        try:
            core.delete_namespace(name, grace_period_seconds=grace_period)
        except ApiException as exc:
            if exc.status != 404:
                raise
            continue
        pending.append(name)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(0.25)
        for name in list(pending):
            try:
                core.read_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                pending.remove(name)
    if pending:
        raise AssertionError(f"Namespace(s) {', '.join(pending)} still terminating after {timeout:.0f}s")


def delete_kept_namespaces(api: Any, release_namespace: str) -> list[str]:
    """Delete the Namespaces a release in ``release_namespace`` made and kept on uninstall (Helm's
    ownership annotation names it), all at once; returns their names."""
    core = client.CoreV1Api(api)
    kept = [ns.metadata.name for ns in core.list_namespace().items
            if (ns.metadata.annotations or {}).get("meta.helm.sh/release-namespace") == release_namespace]
    delete_namespaces(api, kept)
    return kept


def namespace_labels(api: Any, name: str) -> dict[str, str]:
    return dict(client.CoreV1Api(api).read_namespace(name).metadata.labels or {})


# -- releases ----------------------------------------------------------------------------------------

@dataclass
class Deployments:
    """Helm releases a test installed; ``cleanup`` uninstalls them and removes cluster-scoped leftovers."""

    releases: list[tuple[Helm, str, str]] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=set)

    def track(self, helm: Helm, release: str, namespace: str, manifest: str = "") -> None:
        if (helm, release, namespace) not in self.releases:
            self.releases.append((helm, release, namespace))
        for m in parse(manifest):
            if m.kind == "Namespace":
                self.namespaces.add(m.name)

    def cleanup(self, api: Any) -> None:
        # No --wait: Helm's deletes are done when it returns; what still terminates (pods) is in the
        # test's own namespace, which nothing reuses, or in the namespaces deleted (and waited for) below.
        for helm, release, namespace in reversed(self.releases):
            try:
                helm.uninstall(release, namespace=namespace, wait=False, timeout="2m")
            except HelmError as exc:
                if "not found" not in str(exc):
                    raise
        delete_namespaces(api, sorted(self.namespaces))


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

def generated_keys(chart: Path) -> dict[str, set[str]]:
    """Secret name -> keys the chart generates (passwords, keys, tokens, certificates): the keys whose value
    differs between two offline renders. A config document that embeds a generated value (a YAML mapping,
    e.g. the registry's config.yml) is left out: it may change with the version, and its secret has a key
    of its own."""
    renders = [parse(Helm(3).template(chart, release=RELEASE)) for _ in range(2)]
    first, second = ({o.name: o.obj.get("data") or {} for o in r if o.kind == "Secret"} for r in renders)
    out: dict[str, set[str]] = {}
    for name, data in first.items():
        for key, value in data.items():
            if second.get(name, {}).get(key) == value:
                continue
            try:
                document = yaml.safe_load(base64.b64decode(value))
            except yaml.YAMLError:
                document = None
            if not isinstance(document, dict):
                out.setdefault(name, set()).add(key)
    return out



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


# -- pods ---------------------------------------------------------------------------------------------

def python_pod(name: str, script: str, *, labels: dict[str, str] | None = None,
               volumes: list[dict[str, Any]] | None = None, mounts: list[dict[str, Any]] | None = None,
               fs_group: int | None = None, port: int | None = None,
               restart: str = "Never") -> dict[str, Any]:
    """A Pod Security ``restricted`` pod running ``python3 -c script`` as uid 1000 (image TEST_IMAGE)."""
    container: dict[str, Any] = {
        "name": "main", "image": TEST_IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "-c", script], "securityContext": RESTRICTED_CONTAINER,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "volumeMounts": mounts or [],
    }
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    pod_sc: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if fs_group is not None:
        pod_sc["fsGroup"] = fs_group
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"restartPolicy": restart, "enableServiceLinks": False, "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": 1, "securityContext": pod_sc, "containers": [container],
                 "volumes": volumes or []},
    }


def wait_pod(api: Any, ns: str, name: str, *, phase: str = "Running", ready: bool = False,
             timeout: float = 120) -> Any:
    """The pod once it is in ``phase`` (and Ready); else an AssertionError with its state and log tail."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.phase == "Failed" and phase != "Failed":
            break
        if pod.status.phase == phase and (not ready or all(
                c.ready for c in pod.status.container_statuses or [])):
            return pod
        time.sleep(0.5)
    logs = ""
    with contextlib.suppress(ApiException):
        logs = core.read_namespaced_pod_log(name, ns, tail_lines=10)
    states = [(c.name, c.state) for c in (pod.status.container_statuses or [])] if pod else []
    raise AssertionError(f"pod {ns}/{name} not {phase}{' and Ready' if ready else ''} after {timeout:.0f}s: "
                         f"phase {pod.status.phase if pod else None}, {states}, logs: {logs!r}")


def pod_logs(api: Any, ns: str, name: str) -> str:
    return str(client.CoreV1Api(api).read_namespaced_pod_log(name, ns))


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


# -- the host, before and after a real cluster ------------------------------------------------------

# Kernel settings kubelet would rewrite (not per network namespace), and paths Docker or kind create
# unless contained.
HOST_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "kernel/pid_max", "kernel/sysrq")
HOST_PATHS = ("/etc/docker", "/run/docker", "/run/containerd", "/usr/lib/modules", "/var/lib/docker",
              "/var/lib/kubelet", "/etc/cni/net.d", "/run/netns")


def host_state() -> dict[str, Any]:
    """What a real cluster must leave as it found it on the host: KUBE-*/DOCKER iptables rules, the kernel
    settings kubelet touches, and the paths Docker, containerd, kubelet and kind would write."""
    from homeci.cluster.sandbox.box import host_iptables_rules

    sysctls = {}
    for key in HOST_SYSCTLS:
        with contextlib.suppress(OSError):
            sysctls[key] = (Path("/proc/sys") / key).read_text().strip()
    paths = {p: sorted(c.name for c in Path(p).iterdir()) if Path(p).is_dir() else Path(p).exists()
             for p in HOST_PATHS}
    return {"iptables": host_iptables_rules(), "sysctl": sysctls, "paths": paths}


def host_changes(before: dict[str, Any]) -> list[str]:
    """How the host differs from ``before`` (empty: as it was)."""
    after = host_state()
    out = []
    for section in ("iptables", "sysctl", "paths"):
        if after[section] != before[section]:
            if isinstance(before[section], dict):
                out += [f"{section} {k}: {before[section].get(k)!r} -> {after[section].get(k)!r}"
                        for k in sorted(set(before[section]) | set(after[section]))
                        if before[section].get(k) != after[section].get(k)]
            else:
                out.append(f"{section}: {sorted(set(after[section]) ^ set(before[section]))[:5]}")
    return out
