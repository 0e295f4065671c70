"""Container images built from source, with no registry and no Docker (``homeci cluster images``).

Every image the rendered charts reference (and the cluster's own pause and CoreDNS images) has a recipe
in :mod:`homeci.images.recipes` that builds the same program at the same version from the pinned
toolchain, the pinned source archives, PyPI and Debian packages. :func:`build` writes OCI archives that
``ctr -n k8s.io images import`` accepts, cached by recipe digest under ``<cache>/images``.
"""

from __future__ import annotations

from homeci.images.builder import archive_path, build, check, digest, is_cached, recipe_for, require
from homeci.images.recipes import (
    COREDNS_IMAGE,
    ETCD_IMAGE,
    KIND_NODE_IMAGE,
    KUBE_IMAGES,
    PAUSE_IMAGE,
    RECIPES,
    Recipe,
)
from homeci.images.refs import Reference, normalize, referenced_images

__all__ = [
    "COREDNS_IMAGE",
    "ETCD_IMAGE",
    "KIND_NODE_IMAGE",
    "KUBE_IMAGES",
    "PAUSE_IMAGE",
    "RECIPES",
    "Recipe",
    "Reference",
    "archive_path",
    "build",
    "check",
    "digest",
    "is_cached",
    "normalize",
    "recipe_for",
    "referenced_images",
    "require",
]
