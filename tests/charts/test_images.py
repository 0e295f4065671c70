"""Every image is pinned (a version tag or a digest, never `latest`) and honours global.imageRegistry."""

from __future__ import annotations

import re
from typing import Any

from homeci import manifests as mf

from .conftest import containers, dig

# A pinned tag names a release: it carries a version number (3.1.2, v3.7.15, next-0.14.3, 3.13.7-alpine3.22).
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


def test_images_are_pinned(umbrella_manifests: list[mf.Manifest]) -> None:
    problems: list[str] = []
    for w, path, c in containers(umbrella_manifests):
        image = str(c.get("image", ""))
        _name, tag = split_image(image)
        if not tag:
            problems.append(f"{w.ref} {path}.image {image!r} has no tag")
        elif tag in FLOATING or not (tag.startswith("sha256:") or VERSION_TAG.search(tag)):
            problems.append(f"{w.ref} {path}.image {image!r}: tag {tag!r} is not a pinned version")
        if c.get("imagePullPolicy") == "Always":
            problems.append(f"{w.ref} {path}.imagePullPolicy Always (pinned tags need no re-pull)")
    assert not problems, "\n".join(problems)


def test_image_registry_override(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    prefix = dig(values, "global.imageRegistry")
    if not prefix:
        return
    problems = [
        f"{w.ref} {path}.image {c.get('image')!r} does not start with global.imageRegistry {prefix!r}"
        for w, path, c in containers(umbrella_manifests)
        if not str(c.get("image", "")).startswith(f"{prefix}/")
    ]
    assert not problems, "\n".join(problems)


def test_pull_secrets(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    wanted = [s if isinstance(s, str) else s["name"] for s in dig(values, "global.imagePullSecrets", [])]
    if not wanted:
        return
    problems: list[str] = []
    for w in umbrella_manifests:
        spec = w.pod_spec()
        if spec is None:
            continue
        have = [s.get("name") for s in spec.get("imagePullSecrets") or []]
        for name in wanted:
            if name not in have:
                problems.append(f"{w.ref} spec.imagePullSecrets lacks {name!r} (global.imagePullSecrets)")
    assert not problems, "\n".join(problems)
