"""The umbrella's certificate program against the simulated cluster's real API server.

kwok runs no containers (a Job's pods just "succeed"), so the hook Job and the CronJob do nothing there.
These helpers do what the kubelet would: run the container's program (``certs.py`` from its ConfigMap) as
a local process with the container's environment and a token of the pod's ServiceAccount (TokenRequest),
so it meets the real API server, the real RBAC and the real objects.

* :func:`run_hook` is Helm's pre-install/pre-upgrade/pre-rollback step: it creates the hook's ConfigMap,
  ServiceAccount, Role and RoleBinding from a render, runs the hook Job's container and deletes them again
  (hook-succeeded), or leaves them when the run failed, as Helm does. :func:`play_hook` does the same
  for any other hook Job of a render (the registry's rehash hook).
* :func:`run_cronjob` is one run of the installed renewal CronJob (its live pod template and ConfigMap).
* :func:`install` / :func:`upgrade` are ``helm install|upgrade --wait`` preceded by the hook's run.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from homeci.cluster.sim import programs
from homeci.helm import Helm
from homeci.manifests import Manifest
from homeci_testing import certs, support
from homeci_testing.clusters import Deployments, helm_install
from homeci_testing.support import RELEASE, UMBRELLA

HOOK_KINDS = ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy")


class Run(programs.Run):
    """What one run of the certificate program did: its exit code and log lines (``certs: ...``)."""

    @property
    def wrote(self) -> list[str]:
        """The lines that say an object was created, adopted, updated or (re)issued."""
        verbs = ("created", "adopted", "updated", "issued")
        return [line for line in self.log if any(f": {v}" in line for v in verbs)]


def render(namespace: str, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[Manifest]:
    """The working tree's umbrella as ``helm install -n namespace`` renders it."""
    return support.render(UMBRELLA, values, sets, namespace=namespace)


def run_pod(
    api: Any, namespace: str, pod_spec: dict[str, Any], script: str, *, env: dict[str, str] | None = None
) -> Run:
    """The pod's only container, run here as the simulated cluster's provider runs it (homeci.cluster.sim.
    programs): its env (plain values) plus ``env``, a token of the pod's ServiceAccount."""
    run = programs.run_pod(api, namespace, pod_spec, script, env=env, name="certs.py")
    return Run(run.code, run.log)


def run_hook(api: Any, objects: list[Manifest], namespace: str, *, env: dict[str, str] | None = None) -> Run:
    """Helm's pre-install/pre-upgrade/pre-rollback step for the certificate hook of ``objects``."""
    job = certs.hook_job(objects)
    script, _ = certs.program(objects, job)
    return play_hook(api, objects, namespace, job, script, env=env)


def play_hook(api: Any, objects: list[Manifest], namespace: str, job: Manifest, script: str, *,
              env: dict[str, str] | None = None) -> Run:
    """Helm's run of hook Job ``job``: its support objects (same name, HOOK_KINDS) created from
    ``objects``, its container's ``script`` run as :func:`run_pod` does, the objects deleted again
    when it succeeded (hook-succeeded; a failed hook's objects stay for inspection)."""
    hook_objects = [m for m in objects if m.name == job.name and m.kind in HOOK_KINDS]
    for m in hook_objects:
        _delete(api, m)  # before-hook-creation
        utils.create_from_dict(api, m.obj, namespace=m.namespace or namespace)
    result = run_pod(api, namespace, job.pod_spec() or {}, script, env=env)
    if result.code == 0:
        for m in hook_objects:
            _delete(api, m)
    return result


def _delete(api: Any, m: Manifest) -> None:
    group = m.obj["apiVersion"].rpartition("/")[0]
    plural = {
        "ConfigMap": "config_map",
        "ServiceAccount": "service_account",
        "Role": "role",
        "RoleBinding": "role_binding",
        "NetworkPolicy": "network_policy",
    }[m.kind]
    target = {
        "": client.CoreV1Api,
        "rbac.authorization.k8s.io": client.RbacAuthorizationV1Api,
        "networking.k8s.io": client.NetworkingV1Api,
    }[group](api)
    try:
        getattr(target, f"delete_namespaced_{plural}")(m.name, m.namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def run_cronjob(
    api: Any, namespace: str, *, release: str = RELEASE, env: dict[str, str] | None = None
) -> Run:
    """One run of the installed CronJob <release>-certs, as the kubelet would run its pod."""
    run = programs.run_cronjob(api, namespace, f"{release}-certs", "certs.py", env=env)
    return Run(run.code, run.log)


def install(
    deps: Deployments,
    helm: Helm,
    api: Any,
    namespace: str,
    *,
    values_files: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    upgrade: bool = False,
) -> str:
    """``helm install|upgrade --wait`` with the certificate hook run first (it must succeed)."""
    result = run_hook(api, render(namespace, values_files, set_values), namespace)
    assert result.code == 0, (
        f"the certificate hook before {'upgrade' if upgrade else 'install'} failed: {result}"
    )
    return helm_install(
        deps,
        helm,
        api,
        UMBRELLA,
        namespace,
        values_files=values_files,
        set_values=set_values,
        upgrade=upgrade,
    )


def objects(api: Any, namespace: str, release: str = RELEASE) -> dict[str, dict[str, Any]]:
    """``Kind/namespace/name`` -> the live object, for everything the program keeps (those that exist)."""
    core = client.CoreV1Api(api)
    sanitize = client.ApiClient().sanitize_for_serialization
    found: dict[str, dict[str, Any]] = {}
    reads = [
        ("Secret", namespace, f"{release}-ca", core.read_namespaced_secret),
        ("Secret", namespace, f"{release}-tls", core.read_namespaced_secret),
        ("ConfigMap", namespace, f"{release}-ca", core.read_namespaced_config_map),
        ("ConfigMap", f"{release}-builds", f"{release}-ca", core.read_namespaced_config_map),
    ]
    for kind, ns, name, read in reads:
        try:
            found[f"{kind}/{ns}/{name}"] = sanitize(read(name, ns))
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def pem(obj: dict[str, Any], key: str = "tls.crt") -> bytes:
    """A key of a live Secret (base64) or ConfigMap (text), as bytes."""
    value = obj["data"][key]
    return base64.b64decode(value) if obj["kind"] == "Secret" else str(value).encode()


def events(api: Any, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about object ``name``."""
    items = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [(e.type, e.reason, e.message) for e in items.items]
