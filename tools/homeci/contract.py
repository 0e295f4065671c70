"""The cross-chart contract, for Python: what the charts promise each other and their users, read from
the one place it is written (the umbrella's values.yaml for defaults; the naming rule of the library chart).

Everything in homeci that needs a host, a default or an object name of an installed stack (the CLI, the
cluster harnesses, the tests) asks this module instead of re-deriving it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from homeci import paths
from homeci.errors import HomeciError

UMBRELLA = "homeci-umbrella"
PIPELINES = "drone-pipelines"
RELEASE = "homeci"
"""The release name the README installs the umbrella under (and every homeci command defaults to)."""
NAMESPACE = "homeci"
"""The namespace the README installs the umbrella into."""
PIPELINES_RELEASE = "homeci-pipelines"
"""The release name the README installs drone-pipelines under (beside the umbrella's release ``homeci``)."""
COMPONENTS = ("git", "ci", "registry")
"""The public components, by host key (global.hosts.<key>)."""


@cache
def _umbrella_global() -> Mapping[str, Any]:
    path = paths.charts_dir() / UMBRELLA / "values.yaml"
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{path}: cannot read the chart defaults ({exc}); restore the file") from exc
    glob = values.get("global")
    if not isinstance(glob, dict):
        raise HomeciError(f"{path}: has no `global:` section; restore the file")
    return glob


def default_domain() -> str:
    """global.domain as the umbrella chart ships it."""
    return str(_umbrella_global()["domain"])


def default_host_labels() -> dict[str, str]:
    """global.hosts as the umbrella chart ships it ({"git": "git", ...})."""
    hosts = _umbrella_global().get("hosts") or {}
    return {key: str(hosts[key]) for key in COMPONENTS}


def _global(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    glob = (values or {}).get("global")
    return glob if isinstance(glob, Mapping) else {}


def domain(values: Mapping[str, Any] | None = None) -> str:
    """global.domain of a user's umbrella values (the chart default when unset)."""
    return str(_global(values).get("domain") or default_domain())


def host_label(component: str, values: Mapping[str, Any] | None = None) -> str:
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    hosts = _global(values).get("hosts")
    given = hosts.get(component) if isinstance(hosts, Mapping) else None
    return str(given or default_host_labels()[component])


def host(component: str, values: Mapping[str, Any] | None = None) -> str:
    """The host rule: <global.hosts.<component>>.<global.domain>."""
    return f"{host_label(component, values)}.{domain(values)}"


def hosts(values: Mapping[str, Any] | None = None) -> dict[str, str]:
    return {component: host(component, values) for component in COMPONENTS}


@dataclass(frozen=True)
class Names:
    """Object names of one umbrella release (the <release>-<component> rule)."""

    release: str

    def _name(self, suffix: str) -> str:
        return f"{self.release}-{suffix}"[:63].rstrip("-")

    @property
    def ca_configmap(self) -> str:
        return self._name("ca")

    @property
    def ca_secret(self) -> str:
        return self._name("ca")

    @property
    def tls_secret(self) -> str:
        return self._name("tls")

    @property
    def certs(self) -> str:
        """The certificate program's renewal CronJob (and its ServiceAccount, Role, ConfigMap)."""
        return self._name("certs")

    @property
    def certs_hook(self) -> str:
        """The certificate program's hook Job (before install, upgrade and rollback)."""
        return self._name("certs-hook")

    @property
    def admin_secret(self) -> str:
        return self._name("admin")

    @property
    def gogs(self) -> str:
        return self._name("gogs")

    @property
    def drone(self) -> str:
        return self._name("drone")

    @property
    def drone_runner(self) -> str:
        return self._name("drone-runner")

    @property
    def drone_machine_secret(self) -> str:
        return self._name("drone-machine")

    @property
    def registry(self) -> str:
        return self._name("registry")

    @property
    def registry_auth_secret(self) -> str:
        return self._name("registry-auth")

    @property
    def traefik(self) -> str:
        return self._name("traefik")

    @property
    def build_namespace(self) -> str:
        return self._name("builds")


def owner_label(owner: str) -> str:
    """The value drone-runner-kube gives label ``io.drone.repo.namespace`` of an owner's step pods
    (gosimple/slug's Make on a Gogs name: lower case, characters other than a-z 0-9 - _ become -, runs
    of - merge, - and _ trimmed). drone-pipelines keys its deployers by it (``homeci-pipelines.ownerKey``)."""
    text = re.sub(r"-+", "-", re.sub(r"[^a-z0-9_-]", "-", owner.lower()))
    return text.strip("-_")


def deployer_account(owner: str, release: str = PIPELINES_RELEASE) -> str:
    """The deployer ServiceAccount drone-pipelines creates for ``owner`` in the build namespace."""
    return f"{release}-deployer-{owner_label(owner).replace('_', '-')}"
