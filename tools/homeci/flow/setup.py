"""Bring a cluster of any provider to the state the push-to-deploy flow starts from.

The one driver behind ``homeci cluster up``, ``nox -s up`` and the real-cluster tests
(``tests/integration``): the cluster up (:meth:`~homeci.cluster.provider.Cluster.up`), the stack on it
(:func:`homeci.cluster.install.install_stack`: the umbrella, drone-pipelines with one target namespace,
base images seeded where the nodes are offline), and the sample app the flow pushes. On the simulated
cluster the stack is installed the same way but no container runs, so nothing answers a push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeci.cluster import Cluster
from homeci.cluster.install import TARGET, Installed, install_stack
from homeci.flow import driver
from homeci.paths import cache_dir, sample_app

Progress = Callable[[str], None]


@dataclass
class Prepared:
    provider: str
    cluster: Cluster
    installed: Installed
    app: driver.App

    @property
    def stack(self) -> Any:
        """The installed stack as the flow reaches it (:class:`homeci.flow.stack.Stack`)."""
        return self.installed.stack

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig


def state_dir(cluster: Cluster) -> Path:
    """Where ``up`` keeps what it reads back (the CA file) for ``cluster``; made when the stack is read
    (:func:`homeci.flow.stack.from_cluster`), so a refused ``up`` leaves nothing behind."""
    return cache_dir() / "up" / cluster.provider / cluster.name


def prepare(cluster: Cluster, *, major: int = 3, progress: Progress | None = None, workdir: Path,
            values_files: list[Path] | None = None, timeout: float = 300, build: bool = True,
            say: Progress | None = None) -> Prepared:
    """``cluster`` up (built where needed: every missing binary first, in parallel), the stack installed,
    the sample app ready to push. ``say`` gets a line per toolchain item built."""
    if build:
        from homeci.cluster import prebuild

        prebuild.run(cluster, major=major, say=say, progress=progress)
    if cluster.image_source == "source":
        from homeci.cluster.install import default_images, split_images

        # the stack's pods' images are imported while the nodes come up, where the provider can; the
        # pipeline steps' images once those pods are Ready (install_stack)
        cluster.preload(split_images(default_images())[0])
    cluster.up(timeout=timeout, build=build, progress=progress)
    installed = install_stack(cluster, major=major, values_files=values_files, progress=progress,
                              workdir=workdir)
    st = installed.stack
    app = driver.App(source=sample_app(), owner=st.admin_user, name="sample-app", namespace=TARGET,
                     host=f"sample-app.{st.domain}")
    return Prepared(cluster.provider, cluster, installed, app)
