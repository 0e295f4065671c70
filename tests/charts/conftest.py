"""Fixtures for the rendered-manifest tests of the charts.

Every aspect module (security, images, labels, resources, probes) takes ``rendered``: one entry of
``homeci_testing.support.CATALOGUE`` — the umbrella x each ``ci/*-values.yaml``, each subchart alone with its
defaults, drone-pipelines x each of its ``ci/*-values.yaml`` (ids ``umbrella/default``, ``gogs/alone``,
``drone-pipelines/multi-target``) — rendered with Helm 3. Umbrella-only modules take ``scenario`` (one
``ci/*-values.yaml`` of the umbrella) and ``umbrella_manifests``. Paths, the release and the Kubernetes
version come from ``homeci_testing.support`` (re-exported here for the modules that import them from here).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import manifests as mf
from homeci.helm import Helm
from homeci.rendering import scenario_name, scenarios
from homeci_testing.support import (
    CATALOGUE,
    KUBE_VERSION,
    NAMESPACE,
    PIPELINES,
    PIPELINES_RELEASE,
    RELEASE,
    ROOT,
    UMBRELLA,
    Case,
    render_pipelines,
    render_umbrella,
    require_tool,
)

__all__ = ["KUBE_VERSION", "NAMESPACE", "PIPELINES", "PIPELINES_RELEASE", "RELEASE", "ROOT", "UMBRELLA",
           "render_pipelines", "render_umbrella"]

SCENARIOS = scenarios(UMBRELLA)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def scenario_values(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


def dig(data: Any, dotted: str, default: Any = None) -> Any:
    """``dig(values, "registry.auth.existingSecret")`` with a default for missing keys."""
    node = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def workloads(objs: list[mf.Manifest]) -> list[mf.Manifest]:
    return [m for m in objs if m.kind in WORKLOAD_KINDS and m.pod_spec() is not None]


def containers(
    objs: list[mf.Manifest], *, init: bool = True
) -> Iterator[tuple[mf.Manifest, str, dict[str, Any]]]:
    """(workload, ``containers[name]`` path, container) for every container of every workload."""
    for w in workloads(objs):
        for path, c in w.containers(init=init):
            yield w, path, c


def is_hook(m: mf.Manifest) -> bool:
    return "helm.sh/hook" in m.annotations


# Where the charts' own scripts read secrets from files (one file per variable name), instead of env.
SECRETS_DIR_ENV = "HOMECI_SECRETS_DIR"


def secret_source(w: mf.Manifest, container: str, var: str) -> tuple[str, str] | None:
    """(Secret name, key) that variable ``var`` of ``container`` comes from: its env ``secretKeyRef``, or
    the file ``$HOMECI_SECRETS_DIR/<var>`` of a Secret or projected-Secret volume; None when neither."""
    c = w.container(container)
    env = {e["name"]: e for e in c.get("env") or []}
    ref = dig(env.get(var, {}), "valueFrom.secretKeyRef")
    if ref:
        return str(ref["name"]), str(ref["key"])
    folder = dig(env.get(SECRETS_DIR_ENV, {}), "value")
    mount = next((m for m in c.get("volumeMounts") or [] if m.get("mountPath") == folder), None)
    if not folder or mount is None:
        return None
    volume = next(v for v in (w.pod_spec() or {}).get("volumes") or [] if v["name"] == mount["name"])
    sources = [s["secret"] for s in dig(volume, "projected.sources", []) if "secret" in s]
    if "secret" in volume:
        sources.append({**volume["secret"], "name": volume["secret"]["secretName"]})
    for src in sources:
        items = src.get("items")
        for item in items or []:
            if item["path"] == var:
                return str(src["name"]), str(item["key"])
        if items is None:  # the whole Secret: one file per key
            return str(src["name"]), var
    return None


@pytest.fixture(params=SCENARIOS, ids=[scenario_name(p) for p in SCENARIOS])
def scenario(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture
def scenario_id(scenario: Path) -> str:
    return scenario_name(scenario)


@pytest.fixture
def values(scenario: Path) -> dict[str, Any]:
    return scenario_values(scenario)


@pytest.fixture
def umbrella_manifests(scenario: Path) -> list[mf.Manifest]:
    return render_umbrella([scenario])


@functools.cache
def _upgrade_text(values: tuple[Path, ...]) -> str:
    return Helm(3).template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, values_files=values,
                            kube_version=KUBE_VERSION, is_upgrade=True)


def render_umbrella_upgrade(values: list[Path] | tuple[Path, ...] = ()) -> list[mf.Manifest]:
    """The umbrella as `helm upgrade` renders it (``.Release.IsInstall`` false; `helm template` renders an
    install): the objects and hooks of an upgrade."""
    return mf.parse(_upgrade_text(tuple(values)))


@pytest.fixture(scope="session")
def default_manifests() -> list[mf.Manifest]:
    """The chart rendered with no values file at all (what `helm install` with no flags does)."""
    return render_umbrella()


@functools.cache
def _notes_cached(values: tuple[Path, ...], sets: tuple[str, ...]) -> str:
    # Helm 4 renders NOTES offline with install --dry-run=client (Helm 3 wants a cluster for that);
    # a kubeconfig that does not exist makes sure no cluster is ever contacted.
    result = Helm(4, kubeconfig="/nonexistent/homeci-tests/kubeconfig").install(
        RELEASE,
        UMBRELLA,
        namespace=NAMESPACE,
        values_files=values,
        set_values=sets,
        wait=False,
        dry_run="client",
    )
    out = result.stdout
    return out.split("\nNOTES:\n", 1)[1] if "\nNOTES:\n" in out else ""


def render_notes(values: list[Path] | tuple[Path, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """The release NOTES text for a values files / --set combination."""
    return _notes_cached(tuple(Path(v).resolve() for v in values), tuple(sets))


@pytest.fixture
def notes(scenario: Path) -> str:
    return render_notes([scenario])


@dataclass(frozen=True)
class Rendered:
    """One catalogue case rendered: ``case.id`` names it in messages (``gogs/alone``)."""

    case: Case
    values: dict[str, Any]
    manifests: list[mf.Manifest]

    @property
    def id(self) -> str:
        return self.case.id


@pytest.fixture(params=CATALOGUE, ids=[c.id for c in CATALOGUE])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """Every chart x scenario of the catalogue, rendered with Helm 3 (skips when helm3 is not built)."""
    case: Case = request.param
    require_tool("helm3")
    values: dict[str, Any] = {}
    for path in case.values:
        values.update(scenario_values(path))
    return Rendered(case, values, case.render())
