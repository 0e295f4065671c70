"""Scenarios and cached renders shared by ``homeci lint``, ``homeci render`` and the test-suite."""

from __future__ import annotations

import functools
from pathlib import Path

from homeci import contract, manifests
from homeci.helm import Helm

DEFAULT_RELEASE = contract.RELEASE
DEFAULT_NAMESPACE = contract.NAMESPACE


def scenarios(chart: Path) -> list[Path]:
    """The chart's scenario values files (chart-testing convention: ``ci/*-values.yaml``)."""
    return sorted((chart / "ci").glob("*-values.yaml"))


def scenario_name(path: Path | None) -> str:
    return "defaults" if path is None else path.name.removesuffix("-values.yaml")


@functools.cache
def _render_cached(chart: Path, values: tuple[Path, ...], sets: tuple[str, ...], binary: Path, major: int,
                   release: str, namespace: str, kube_version: str | None) -> str:
    return Helm(major, binary=binary).template(chart, release=release, namespace=namespace,
                                               values_files=values, set_values=sets,
                                               kube_version=kube_version)


def render_text(chart: Path, values: tuple[Path, ...] | list[Path] = (), sets: tuple[str, ...] = (), *,
                major: int = 3, release: str = DEFAULT_RELEASE, namespace: str = DEFAULT_NAMESPACE,
                kube_version: str | None = None) -> str:
    """``helm template`` output, cached per argument set and helm binary (another ``HOMECI_HELM3`` is
    another render) for the life of the process."""
    return _render_cached(Path(chart).resolve(), tuple(Path(v).resolve() for v in values), tuple(sets),
                          Helm(major).binary, major, release, namespace, kube_version)


def render(chart: Path, values: tuple[Path, ...] | list[Path] = (), sets: tuple[str, ...] = (), *,
           major: int = 3, release: str = DEFAULT_RELEASE, namespace: str = DEFAULT_NAMESPACE,
           kube_version: str | None = None) -> list[manifests.Manifest]:
    """Rendered objects (parsed fresh each call, so callers may mutate them)."""
    return manifests.parse(render_text(chart, values, sets, major=major, release=release,
                                       namespace=namespace, kube_version=kube_version))
