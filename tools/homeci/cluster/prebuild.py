"""What ``homeci cluster up`` (``nox -s up``) will build, built first, in parallel, with estimates.

``up`` resolves its binaries one by one as it goes (the provider's, then each image's, then Helm). Before
it starts, this module collects exactly those — the provider's tools, the tools inside every image the
cluster and (with the stack) the charts' default render need, and the Helm major that installs the
stack; not the test-only tools — and builds the missing ones with :mod:`homeci.toolbuild`: a few go
commands at a time, a line per item and an estimate from earlier builds. The resolves that follow find
everything in the cache.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeci import toolbuild
from homeci.cluster.provider import Cluster, Progress


def image_tools(refs: Iterable[str]) -> list[str]:
    """The toolchain tools the recipes of ``refs`` copy into their images."""
    from homeci import images

    out: list[str] = []
    for ref in refs:
        out += images.require(ref).tools
    return out


def needs(cluster: Cluster, *, major: int | None = None, stack: bool = True) -> list[str]:
    """Every tool ``up`` builds for ``cluster`` (and, with ``stack``, for installing the stack with Helm
    ``major``) that is known without a render, in a stable order without repeats."""
    tools, refs = cluster.build_needs()
    wanted = [*tools, *image_tools(refs)]
    if stack and major is not None:
        wanted.append(f"helm{major}")
    return list(dict.fromkeys(wanted))


def stack_image_tools() -> list[str]:
    """The tools inside the images a default render of the charts names (the render needs Helm 3)."""
    from homeci.cluster.install import default_images

    return image_tools(default_images())


def run(cluster: Cluster, *, major: int | None = None, stack: bool = True, say: Progress | None = None,
        progress: Progress | None = None) -> None:
    """Build what ``up`` will need and the cache lacks (nothing when all is there). With the stack's
    images built from source, Helm 3 comes first: its render names the images, whose tools follow in
    the same run."""
    from homeci.cluster import prereqs

    prereqs.require(cluster.provider, build=True)  # a missing package is named now, not after the builds
    images = stack and cluster.image_source == "source"
    toolbuild.install(needs(cluster, major=major, stack=stack), say=say or progress, detail=progress,
                      then=("helm3", stack_image_tools) if images else None)
