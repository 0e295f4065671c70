"""Image recipes: every image the renders reference has one, names are normalised like containerd's,
a missing recipe fails with one line, and a pin change changes the recipe digest."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from pathlib import Path

import pytest

from homeci import images, sources, toolchain
from homeci.errors import HomeciError
from homeci.images import builder, refs
from homeci.images.recipes import PREVIOUS_BASES, RECIPES


@pytest.fixture(scope="module")
def referenced() -> list[images.Reference]:
    return images.referenced_images()


def test_every_referenced_image_has_a_recipe(referenced: list[images.Reference]) -> None:
    missing = [f"{r.ref} (referenced by {r.where[0]})" for r in referenced
               if images.recipe_for(r.ref) is None]
    assert not missing, "images without a recipe in homeci.images.recipes:\n" + "\n".join(missing)
    images.check(referenced)  # the same check the commands run


def test_the_nodes_images_come_from_the_default_renders_alone(referenced: list[images.Reference]) -> None:
    """`homeci cluster up` loads what the default renders and the cluster name, found with two renders
    instead of every scenario: the same list as the full scan's defaults."""
    quick = [r.ref for r in images.referenced_images(defaults_only=True) if r.default]
    full = [r.ref for r in referenced if r.default]
    assert quick == full, (f"only in the quick scan: {set(quick) - set(full)}; "
                           f"only in the full one: {set(full) - set(quick)}")


def test_the_stacks_pod_images_load_before_the_pipeline_steps_images() -> None:
    """`homeci cluster up` loads the images of the stack's pods before the umbrella, those only a build
    starts (the runner's clone and placeholder images, the templates' step images) after it."""
    from homeci.cluster.install import default_images, split_images

    refs = default_images()
    pods, steps = split_images(refs)
    assert sorted(pods + steps) == sorted(refs) and not set(pods) & set(steps)
    assert refs[:len(pods)] == pods, "default_images() lists the pods' images first"
    by_ref = {r.ref: r for r in images.referenced_images(defaults_only=True)}
    for ref in steps:
        named = [w for w in by_ref[ref].where if " env " not in w and "pipeline template" not in w]
        assert not named, f"{ref} runs in a pod of the stack ({named[0]}), yet waits for the steps' turn"
    for ref in pods:
        assert any(" env " not in w and "pipeline template" not in w for w in by_ref[ref].where), (
            f"{ref} is loaded with the pods, yet only steps name it: {by_ref[ref].where}")
    assert steps, "the pipeline templates name step images"


def test_the_renders_name_every_kind_of_reference(referenced: list[images.Reference]) -> None:
    by_ref = {r.ref: r for r in referenced}
    # containers of workloads, in the defaults
    assert by_ref["docker.io/library/traefik:v3.7.15"].default
    assert by_ref["docker.io/gogs/gogs:next-0.14.3"].default
    # the runner's env: the clone image and the placeholder every step starts from
    assert any("DRONE_IMAGE_PLACEHOLDER" in w for w in by_ref["docker.io/drone/placeholder:1"].where)
    assert any("DRONE_IMAGE_CLONE" in w for w in by_ref["docker.io/drone/git:1.2.1"].where)
    # the pipeline templates' step images, from the drone-pipelines ConfigMap
    for step in ("docker.io/plugins/kaniko:1.13.9", "docker.io/alpine/kubectl:1.37.2",
                 "docker.io/library/alpine:3.24.2"):
        assert any("pipeline template" in w for w in by_ref[step].where), step
    # the cluster's own images
    assert by_ref[images.PAUSE_IMAGE].default and by_ref[images.COREDNS_IMAGE].default
    # a scenario with global.imageRegistry: mirror names are listed (not default) and map to recipes
    mirrored = [r for r in referenced if r.ref.startswith("mirror.lab.example.net:5000/")]
    assert mirrored and not any(r.default for r in mirrored)


def test_every_recipe_is_referenced(referenced: list[images.Reference]) -> None:
    used = {images.recipe_for(r.ref).ref for r in referenced if images.recipe_for(r.ref)}  # type: ignore[union-attr]
    # PREVIOUS_BASES: named by the previous release's charts, which the day-two tier installs first
    # (tests/daytwo fails with "has no recipe" without them); dropped when that release moves on.
    previous = {r.ref for r in PREVIOUS_BASES}
    unused = sorted(r.ref for r in RECIPES if r.ref not in used and r.ref not in previous)
    assert not unused, f"recipes no render or cluster references (remove them): {unused}"


def test_a_missing_recipe_fails_with_one_line() -> None:
    ref = images.Reference("docker.io/library/nginx:1.29",
                           ["charts/x (defaults): Deployment/web containers[web]"])
    with pytest.raises(HomeciError) as err:
        images.check([ref])
    message = str(err.value)
    assert "\n" not in message
    assert "docker.io/library/nginx:1.29" in message and "Deployment/web containers[web]" in message
    with pytest.raises(HomeciError, match=r"nginx:1\.29 has no recipe"):
        images.build(["nginx:1.29"])


@pytest.mark.parametrize(("given", "expected"), [
    ("alpine:3.24.2", "docker.io/library/alpine:3.24.2"),
    ("drone/drone:2.28.2", "docker.io/drone/drone:2.28.2"),
    ("docker.io/library/registry:3.1.2", "docker.io/library/registry:3.1.2"),
    ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2"),
    ("localhost/app", "localhost/app:latest"),
    ("mirror.lan:5000/drone/git:1.2.1", "mirror.lan:5000/drone/git:1.2.1"),
])
def test_normalize_like_containerd(given: str, expected: str) -> None:
    assert images.normalize(given) == expected


def test_a_mirror_name_is_built_by_the_upstream_recipe() -> None:
    recipe = images.recipe_for("mirror.lab.example.net:5000/library/registry:3.1.2")
    assert recipe is not None and recipe.ref == "docker.io/library/registry:3.1.2"
    assert images.recipe_for("mirror.lab.example.net:5000/python:3.13.14-alpine3.24") is not None
    assert images.recipe_for("mirror.lab.example.net:5000/library/registry:9.9.9") is None
    # an upstream name is never taken for a mirror of another upstream image
    assert images.recipe_for("docker.io/library/pause:3.10.2") is None


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.ref)
def test_recipe_builds_the_version_its_tag_names(recipe: images.Recipe) -> None:
    assert recipe.version in recipe.tag, f"{recipe.ref}: version {recipe.version} not in the tag"
    assert recipe.ref == images.normalize(recipe.ref), f"{recipe.ref} is not fully qualified"
    if recipe.stand_in:
        return  # says itself what it stands in for
    pins = [toolchain.tool(n).version.lstrip("v") for n in recipe.tools[:1]]
    pins += [importlib.metadata.version(d) for d in recipe.pypi]
    pins += [sources.source(n).archive.removesuffix(".tar.gz").rsplit("-", 1)[1] for n in recipe.sources[:1]]
    assert pins, f"{recipe.ref}: no pin says which version it builds"
    assert pins[0] == recipe.version, f"{recipe.ref}: built from {pins[0]}, the image says {recipe.version}"


def test_stand_ins_say_so() -> None:
    stand_ins = {r.ref for r in RECIPES if r.stand_in}
    assert "docker.io/library/python:3.13.14-alpine3.24" in stand_ins
    assert "docker.io/library/alpine:3.24.2" in stand_ins


def test_a_pin_change_changes_the_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = images.require(images.COREDNS_IMAGE)
    before = images.digest(recipe)
    assert images.digest(recipe) == before  # stable
    real = toolchain.tool

    def bumped(name: str) -> toolchain.Tool:
        t = real(name)
        return dataclasses.replace(t, version="v1.14.8") if name == "coredns" else t

    monkeypatch.setattr(builder.toolchain, "tool", bumped)
    assert images.digest(recipe) != before
    assert images.archive_path(images.COREDNS_IMAGE).name != f"{before}.tar"


def test_pipeline_template_images_are_read_from_defaults_and_literals() -> None:
    text = '{{- $d_image_kaniko := "plugins/kaniko:1.13.9" -}}\nsteps:\n- image: "alpine:3.24.2"\n' \
           '- image: {{ printf "%q" $d_image_kaniko }}\n'
    from homeci.manifests import Manifest

    cm = Manifest({"kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"x.yaml": text}})
    found = sorted(image for image, _ in refs._from_manifests([cm]))
    assert found == ["alpine:3.24.2", "plugins/kaniko:1.13.9"]


def test_an_overridden_tool_changes_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = images.require(images.PAUSE_IMAGE)
    before = images.digest(recipe)
    own = tmp_path / "pause"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    monkeypatch.setenv(toolchain.tool("pause").env, str(own))
    assert images.digest(recipe) != before
