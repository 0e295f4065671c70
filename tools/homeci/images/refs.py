"""Image references: normalising them as containerd does, and finding every one the charts render.

The list is derived from renders, never kept by hand: every workload container and init container of
the umbrella and drone-pipelines charts, in their defaults and every ``ci/*-values.yaml`` scenario, the
runner's image settings (``DRONE_IMAGE_*`` env values), the step images of the pipeline templates the
drone-pipelines chart renders into its ConfigMap, and the cluster's own images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from homeci import manifests, paths, rendering
from homeci.images.recipes import COREDNS_IMAGE, ETCD_IMAGE, KIND_NODE_IMAGE, KUBE_IMAGES, PAUSE_IMAGE

# Env values of the runner that name images it starts (the placeholder is named by no manifest).
IMAGE_ENV = ("DRONE_IMAGE_CLONE", "DRONE_IMAGE_PLACEHOLDER")
# Charts whose renders reference images.
CHARTS = ("homeci-umbrella", "drone-pipelines")
# Images the cluster itself runs (homeci.cluster imports the same constants): the real node's (loaded
# with the stack, "default") and what only an offline kind cluster needs.
CLUSTER_IMAGES = {PAUSE_IMAGE: "homeci cluster (netns, offline kind): the pod sandbox image",
                  COREDNS_IMAGE: "homeci cluster (netns, offline kind): cluster DNS"}
KIND_IMAGES = {**{ref: "homeci cluster --provider kind (offline): kubeadm's control plane"
                  for ref in (ETCD_IMAGE, *KUBE_IMAGES)},
               KIND_NODE_IMAGE: "homeci cluster --provider kind (offline): the node image (docker load)"}

# In pipeline templates (Drone's Go templates inside the ConfigMap): `$d_image_<x> := "<ref>"` defaults
# and literal `image: <ref>` lines.
_TEMPLATE_DEFAULT = re.compile(r'\$d_image_(\w+)\s*:=\s*"([^"{}]+)"')
_TEMPLATE_LITERAL = re.compile(r'(?m)^\s*(?:-\s*)?image:\s*"?([^"\s{}]+)"?\s*$')


def normalize(ref: str) -> str:
    """The fully qualified name containerd gives ``ref``: ``alpine:3`` → ``docker.io/library/alpine:3``."""
    ref = ref.strip()
    first, _, rest = ref.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + ref
    host, _, path = ref.partition("/")
    if host == "docker.io" and "/" not in path:
        ref = f"docker.io/library/{path}"
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        ref += ":latest"
    return ref


def path_of(ref: str) -> str:
    """The repository path and tag without the registry host and Docker Hub's ``library/``: what a
    mirror (``global.imageRegistry``) keeps of an upstream name."""
    path = normalize(ref).partition("/")[2]
    return path.removeprefix("library/")


@dataclass
class Reference:
    """One image reference and everywhere the renders name it."""

    ref: str  # normalised
    where: list[str] = field(default_factory=list)
    default: bool = False  # named by a default render (no scenario) or by the cluster
    # a container image of the charts' own pods or the cluster's; the others (the runner's clone and
    # placeholder images, the pipeline templates' step images) start only with a build
    pod: bool = False


def _from_manifests(objs: list[manifests.Manifest]) -> Iterable[tuple[str, str]]:
    for m in objs:
        for path, c in m.containers():
            if c.get("image"):
                yield str(c["image"]), f"{m.ref} {path}"
            for env in c.get("env") or []:
                if env.get("name") in IMAGE_ENV and env.get("value"):
                    yield str(env["value"]), f"{m.ref} {path} env {env['name']}"
        if m.kind == "ConfigMap":
            for key, text in (m.obj.get("data") or {}).items():
                if not isinstance(text, str) or "{{" not in text:
                    continue  # pipeline templates are Go templates
                for var, image in _TEMPLATE_DEFAULT.findall(text):
                    yield image, f"{m.ref} {key} (pipeline template, $d_image_{var})"
                for image in _TEMPLATE_LITERAL.findall(text):
                    yield image, f"{m.ref} {key} (pipeline template)"


def renders(*, defaults_only: bool = False) -> list[tuple[str, Path | None, list[manifests.Manifest]]]:
    """(label, scenario file or None, objects) for every chart and scenario that references images (only
    each chart's default render with ``defaults_only``)."""
    out = []
    for name in CHARTS:
        chart = paths.resolve_chart(name)
        for values in (None, *(() if defaults_only else rendering.scenarios(chart))):
            objs = rendering.render(chart, (values,) if values else ())
            out.append((f"charts/{name} ({rendering.scenario_name(values)})", values, objs))
    return out


def referenced_images(*, defaults_only: bool = False) -> list[Reference]:
    """Every image the rendered charts and the cluster reference, sorted by name; with ``defaults_only``
    only what the cluster and each chart's default render name (two renders instead of every scenario:
    what ``homeci cluster up`` loads onto the nodes)."""
    found: dict[str, Reference] = {}

    def note(image: str, where: str, default: bool, pod: bool) -> None:
        r = found.setdefault(normalize(image), Reference(normalize(image)))
        r.where.append(where)
        r.default = r.default or default
        r.pod = r.pod or pod

    for ref, why in CLUSTER_IMAGES.items():
        note(ref, why, True, True)
    for ref, why in KIND_IMAGES.items():
        note(ref, why, False, True)
    for label, values, objs in renders(defaults_only=defaults_only):
        pods = {str(c["image"]) for m in objs for _, c in m.containers() if c.get("image")}
        for image, where in _from_manifests(objs):
            note(image, f"{label}: {where}", values is None, image in pods)
    return sorted(found.values(), key=lambda r: r.ref)
