"""What backup, restore and status read about an installed stack through the API server: Helm's release
records (chart, version, user-supplied values — no helm binary needed), the component pods and their
versions, the Secrets that hold its state."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Any

from homeci import contract
from homeci.errors import HomeciError

# component label -> (Deployment suffix, container that serves) of the umbrella's workloads
COMPONENTS = {
    "traefik": ("traefik", "traefik"),
    "registry": ("registry", "registry"),
    "git": ("gogs", "gogs"),
    "ci-server": ("drone", "drone"),
    "ci-runner": ("drone-runner", "runner"),
}
GOGS_CONTAINER = "gogs"
BRIDGE_CONTAINER = "gogs-bridge"


@dataclass
class HelmRelease:
    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    version: str
    app_version: str
    values: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"release": self.name, "namespace": self.namespace, "revision": self.revision,
                "chart": self.chart, "version": self.version, "appVersion": self.app_version,
                "values": self.values}


def helm_release(core: Any, namespace: str, name: str) -> HelmRelease | None:
    """The newest deployed revision of Helm release ``name`` from its Secret records (what
    ``helm get values`` reads), or None when there is none."""
    items = core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={name}").items
    best: tuple[int, Any] | None = None
    for s in items:
        labels = s.metadata.labels or {}
        if labels.get("status") != "deployed" or not labels.get("version", "").isdigit():
            continue
        rev = int(labels["version"])
        if best is None or rev > best[0]:
            best = (rev, s)
    if best is None:
        return None
    rev, secret = best
    try:
        raw = base64.b64decode(base64.b64decode((secret.data or {})["release"]))
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        rel = json.loads(raw)
        meta = rel["chart"]["metadata"]
        return HelmRelease(name, namespace, rev, str((secret.metadata.labels or {}).get("status")),
                           str(meta["name"]), str(meta["version"]), str(meta.get("appVersion", "")),
                           dict(rel.get("config") or {}))
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise HomeciError(f"Helm's record {namespace}/{secret.metadata.name} of release {name} cannot be "
                          f"read ({exc}): is it a Helm 3/4 release?") from None


def umbrella(core: Any, namespace: str, release: str) -> HelmRelease:
    found = helm_release(core, namespace, release)
    if found is None:
        raise HomeciError(f"no Helm release {release!r} in namespace {namespace}: pass --namespace and "
                          "--release of your homeci install")
    return found


def selector(release: str, component: str) -> str:
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"


def deployment_name(release: str, component: str) -> str:
    return f"{release}-{COMPONENTS[component][0]}"


def component_versions(apps: Any, namespace: str, release: str) -> dict[str, str]:
    """component -> the image tag its Deployment runs (label app.kubernetes.io/version)."""
    out: dict[str, str] = {}
    for dep in apps.list_namespaced_deployment(namespace,
                                               label_selector=f"app.kubernetes.io/instance={release}").items:
        labels = dep.metadata.labels or {}
        comp = labels.get("app.kubernetes.io/component")
        if comp:
            out[comp] = labels.get("app.kubernetes.io/version", "")
    return out


def pipeline_targets(pipelines: HelmRelease | None) -> list[str]:
    if pipelines is None:
        return []
    return sorted({str(t["namespace"]) for t in pipelines.values.get("targets") or []
                   if isinstance(t, dict) and t.get("namespace")})


def names(release: str) -> contract.Names:
    return contract.Names(release)
