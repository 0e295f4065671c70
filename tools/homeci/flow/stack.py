"""What the flow needs to know about an installed stack, read from the cluster itself.

Public hosts come from the release's Ingresses (component labels ``git``, ``ci-server``, ``registry``),
the CA from ConfigMap ``<release>-ca``, credentials from the Secrets the umbrella keeps:
``<release>-admin`` (Gogs/Drone admin), ``<release>-drone-machine`` (Drone API token) and
``<release>-registry-auth`` (registry push/pull).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeci import contract
from homeci.errors import HomeciError
from homeci.flow.web import Web

COMPONENT_HOSTS = {"git": "git", "ci-server": "ci", "registry": "registry"}


@dataclass
class Stack:
    release: str
    namespace: str
    hosts: dict[str, str]  # "git" | "ci" | "registry" -> public host name
    ca_file: Path
    admin_user: str
    admin_password: str
    machine_token: str
    registry_user: str
    registry_password: str
    web: Web
    # How git reaches the public names when DNS does not: curl --resolve entries (host:port:address).
    git_resolve: list[str] = field(default_factory=list)
    https_port: int = 443
    # The Kubernetes API client the stack was read with (kubernetes.client.ApiClient): with it the flow
    # watches each round's pods and reports where the time goes (homeci.flow.timeline). None: no watch.
    kube: Any = None

    def url(self, which: str) -> str:
        host = self.hosts[which]
        return f"https://{host}" if self.https_port == 443 else f"https://{host}:{self.https_port}"

    @property
    def domain(self) -> str:
        return self.hosts["git"].split(".", 1)[1]


def _secret(api: Any, namespace: str, name: str, key: str) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        obj = api.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        raise HomeciError(
            f"cannot read Secret {namespace}/{name} ({exc.status} {exc.reason}): is the homeci release "
            f"installed in namespace {namespace}, and may your kubeconfig read Secrets there?"
        ) from None
    data = (obj.data or {}).get(key)
    if data is None:
        raise HomeciError(f"Secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data).decode()


def from_cluster(core: Any, networking: Any, namespace: str, release: str, workdir: Path,
                 web_factory: Any) -> Stack:
    """Read hosts, CA and credentials of release ``release`` in ``namespace``.

    ``web_factory(ca_file)`` returns the :class:`Web` used to reach the public names."""
    from kubernetes.client.exceptions import ApiException

    hosts: dict[str, str] = {}
    try:
        ingresses = networking.list_namespaced_ingress(
            namespace, label_selector=f"app.kubernetes.io/instance={release}").items
    except ApiException as exc:
        raise HomeciError(f"cannot list Ingresses in {namespace} ({exc.status} {exc.reason})") from None
    for ing in ingresses:
        component = (ing.metadata.labels or {}).get("app.kubernetes.io/component", "")
        if component in COMPONENT_HOSTS and ing.spec.rules:
            hosts[COMPONENT_HOSTS[component]] = ing.spec.rules[0].host
    missing = sorted(set(COMPONENT_HOSTS.values()) - set(hosts))
    if missing:
        raise HomeciError(
            f"release {release} in {namespace} has no Ingress for {', '.join(missing)}: "
            "is the umbrella installed there with gogs, drone and registry enabled?"
        )
    names = contract.Names(release)
    try:
        ca = core.read_namespaced_config_map(names.ca_configmap, namespace).data["ca.crt"]
    except (ApiException, KeyError, TypeError):
        raise HomeciError(
            f"cannot read ConfigMap {namespace}/{names.ca_configmap} key ca.crt (the public CA)") from None
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file = workdir / "homeci-ca.crt"
    ca_file.write_text(ca)
    return Stack(
        release=release, namespace=namespace, hosts=hosts, ca_file=ca_file,
        admin_user=_secret(core, namespace, names.admin_secret, "username"),
        admin_password=_secret(core, namespace, names.admin_secret, "password"),
        machine_token=_secret(core, namespace, names.drone_machine_secret, "token"),
        registry_user=_secret(core, namespace, names.registry_auth_secret, "username"),
        registry_password=_secret(core, namespace, names.registry_auth_secret, "password"),
        web=web_factory(ca_file),
        kube=getattr(core, "api_client", None),
    )
