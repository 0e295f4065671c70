"""Every image is pinned (a version tag or a digest, never `latest`), honours global.imageRegistry, and
takes an optional digest beside its tag (rendered `repo:tag@sha256:…`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import manifests as mf
from homeci.images.refs import _from_manifests as image_references  # the discovery homeci.images uses
from homeci.rendering import scenario_name, scenarios
from homeci_testing.support import PIPELINES, PIPELINES_RELEASE, RELEASE, UMBRELLA, render

from .conftest import Rendered, containers, dig

# A pinned tag names a release: it carries a version number (3.1.2, v3.7.15, next-0.14.3, 3.13.14-alpine3.24).
VERSION_TAG = re.compile(r"(^|[^0-9])v?\d+\.\d+(\.\d+)?")
FLOATING = {"latest", "next", "main", "master", "edge", "stable", "nightly", "dev", "rolling"}


def split_image(image: str) -> tuple[str, str]:
    """(name, tag-or-digest)."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return image, ""
    name, tag = image.rsplit(":", 1)
    return name, tag


def test_images_are_pinned(rendered: Rendered) -> None:
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests):
        image = str(c.get("image", ""))
        _name, tag = split_image(image)
        if not tag:
            problems.append(f"{w.ref} {path}.image {image!r} has no tag")
        elif tag in FLOATING or not (tag.startswith("sha256:") or VERSION_TAG.search(tag)):
            problems.append(f"{w.ref} {path}.image {image!r}: tag {tag!r} is not a pinned version")
        if c.get("imagePullPolicy") == "Always":
            problems.append(f"{w.ref} {path}.imagePullPolicy Always (pinned tags need no re-pull)")
    assert not problems, "\n".join(problems)


def test_image_registry_override(rendered: Rendered) -> None:
    prefix = dig(rendered.values, "global.imageRegistry")
    if not prefix:
        return
    problems = [
        f"{w.ref} {path}.image {c.get('image')!r} does not start with global.imageRegistry {prefix!r}"
        for w, path, c in containers(rendered.manifests)
        if not str(c.get("image", "")).startswith(f"{prefix}/")
    ]
    assert not problems, "\n".join(problems)


def test_pull_secrets(rendered: Rendered) -> None:
    secrets = dig(rendered.values, "global.imagePullSecrets", [])
    wanted = [s if isinstance(s, str) else s["name"] for s in secrets]
    if not wanted:
        return
    problems: list[str] = []
    for w in rendered.manifests:
        spec = w.pod_spec()
        if spec is None:
            continue
        have = [s.get("name") for s in spec.get("imagePullSecrets") or []]
        for name in wanted:
            if name not in have:
                problems.append(f"{w.ref} spec.imagePullSecrets lacks {name!r} (global.imagePullSecrets)")
    assert not problems, "\n".join(problems)


# --- digests ------------------------------------------------------------------------------------------

Path_ = tuple[str, ...]


def image_paths(values: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every image setting in a values tree: a mapping with repository, tag and digest."""
    if isinstance(values, dict):
        if {"repository", "tag", "digest"} <= values.keys():
            yield prefix
            return
        for key, sub in values.items():
            yield from image_paths(sub, (*prefix, key))


def chart_images(chart: Path) -> dict[Path_, dict[str, Any]]:
    """Image path -> its default settings, subcharts' images under their section key."""
    top = _load(chart / "values.yaml")
    found = {p: dig(top, ".".join(p)) for p in image_paths(top)}
    for sub in sorted((chart / "charts").glob("*/values.yaml")):
        defaults = _load(sub)
        found |= {(sub.parent.name, *p): dig(defaults, ".".join(p)) for p in image_paths(defaults)}
    return found


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def digest_for(path: Path_) -> str:
    return "sha256:" + hashlib.sha256(".".join(path).encode()).hexdigest()


def _nested(path: Path_, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if both else value
    return out


CHARTS = {"homeci-umbrella": (UMBRELLA, RELEASE), "drone-pipelines": (PIPELINES, PIPELINES_RELEASE)}
CASES = [(name, s) for name, (chart, _) in CHARTS.items() for s in scenarios(chart)]


@pytest.fixture(scope="module")
def digest_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per chart, a values file giving every image its own digest (sha256 of the image's dotted path)."""
    out = {}
    for name, (chart, _) in CHARTS.items():
        doc: dict[str, Any] = {}
        for path in chart_images(chart):
            doc = _deep_merge(doc, _nested((*path, "digest"), digest_for(path)))
        out[name] = tmp_path_factory.mktemp(name) / "digests-values.yaml"
        out[name].write_text(yaml.safe_dump(doc))
    return out


def render_with_digests(name: str, scenario: Path, digest_file: Path) -> list[mf.Manifest]:
    chart, release = CHARTS[name]
    return render(chart, (scenario, digest_file), release=release)


@pytest.mark.parametrize(("chart", "scenario"), CASES, ids=[f"{c}-{scenario_name(s)}" for c, s in CASES])
def test_digest_renders_beside_the_tag(chart: str, scenario: Path, digest_files: dict[str, Path]) -> None:
    """With a digest set for every image, every image reference the render names (containers, the
    runner's clone/placeholder images, the pipeline templates' step images) is repo:tag@<that digest>."""
    directory, _ = CHARTS[chart]
    images = chart_images(directory)
    by_digest = {digest_for(p): p for p in images}
    values = _load(scenario)
    problems = []
    for ref, where in image_references(render_with_digests(chart, scenario, digest_files[chart])):
        name, _, digest = ref.partition("@")
        path = by_digest.get(digest)
        if path is None:
            problems.append(f"{where}: image {ref!r} carries no digest of any image setting")
            continue
        image = _deep_merge(images[path], dig(values, ".".join(path), {}) or {})
        if not name.endswith(f"{image['repository']}:{image['tag']}"):
            problems.append(f"{where}: image {ref!r} is not {'.'.join(path)} "
                            f"({image['repository']}:{image['tag']}) with its digest")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_every_image_setting_is_rendered(chart: str, digest_files: dict[str, Path]) -> None:
    """Each image setting with a digest shows up in some scenario's render (so the test above covers
    every image of the chart, and no image setting is dead)."""
    directory, _ = CHARTS[chart]
    seen = {
        ref.partition("@")[2]
        for scenario in scenarios(directory)
        for ref, _ in image_references(render_with_digests(chart, scenario, digest_files[chart]))
    }
    missing = [".".join(p) for p in chart_images(directory) if digest_for(p) not in seen]
    assert not missing, f"charts/{chart}: image settings no scenario renders: {', '.join(missing)}"
