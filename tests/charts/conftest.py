"""Fixtures for the rendered-manifest tests of the umbrella chart.

Every aspect module takes the ``scenario`` fixture (one ``ci/*-values.yaml`` of the umbrella, id = the
scenario name) and ``umbrella_manifests`` (that scenario rendered with Helm 3), so each new scenario or
subchart is checked by every aspect automatically.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import manifests as mf
from homeci.helm import Helm
from homeci.rendering import render, scenario_name, scenarios

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = ROOT / "charts" / "homeci-umbrella"
SCENARIOS = scenarios(UMBRELLA)
RELEASE = "homeci"
NAMESPACE = "homeci"
# Newest Kubernetes minor we support and validate (kubeVersion >=1.30.0-0 in Chart.yaml). Passed
# explicitly: a Helm built without its k8s-version ldflags would otherwise assume 1.20.
KUBE_VERSION = "1.37.0"

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def render_umbrella(
    values: list[Path] | tuple[Path, ...] = (), sets: tuple[str, ...] = (), *, major: int = 3
) -> list[mf.Manifest]:
    return render(
        UMBRELLA,
        tuple(values),
        sets,
        major=major,
        release=RELEASE,
        namespace=NAMESPACE,
        kube_version=KUBE_VERSION,
    )


PIPELINES = ROOT / "charts" / "drone-pipelines"
PIPELINES_RELEASE = "homeci-pipelines"


def render_pipelines(
    values: list[Path] | tuple[Path, ...] = (), sets: tuple[str, ...] = ()
) -> list[mf.Manifest]:
    """drone-pipelines rendered as the README installs it (release homeci-pipelines in namespace homeci)."""
    return render(PIPELINES, tuple(values), sets, release=PIPELINES_RELEASE, namespace=NAMESPACE,
                  kube_version=KUBE_VERSION)


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
