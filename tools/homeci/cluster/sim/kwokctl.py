"""The kwokctl configuration file for a simulated cluster (every binary local, nothing downloaded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci.cluster.sim.stages import stages

# Bind every control-plane listener to loopback only.
BIND_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class Binaries:
    """Paths of the programs kwokctl runs; each one must be local (kwokctl downloads only URLs)."""

    kwokctl: Path
    kwok: Path
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path | None = None


def kwokctl_config(binaries: Binaries, *, kube_version: str, etcd_version: str,
                   kwok_version: str) -> list[dict[str, Any]]:
    """The documents of the ``--config`` file: KwokctlConfiguration then the Stages."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": BIND_ADDRESS,
        "kubeVersion": kube_version,
        "etcdVersion": etcd_version.lstrip("v"),
        "kwokVersion": kwok_version,
        "kubeApiserverBinary": str(binaries.kube_apiserver),
        "kubeControllerManagerBinary": str(binaries.kube_controller_manager),
        "kubeSchedulerBinary": str(binaries.kube_scheduler),
        "kwokControllerBinary": str(binaries.kwok),
        "etcdBinary": str(binaries.etcd),
        # Authorization (RBAC) and admission (Pod Security included) stay on: that is the point.
        "kubeAuthorization": True,
        "kubeAdmission": True,
    }
    if binaries.kubectl is not None:
        options["kubectlBinary"] = str(binaries.kubectl)
    else:
        # Never fetched unless someone runs `kwokctl kubectl`; point it at a path that fails clearly.
        options["kubectlBinary"] = "/nonexistent/kubectl-not-installed-run-homeci-toolchain-install-kubectl"
    config = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
        "componentsPatches": [
            {
                # The built-in hostPath provisioner makes PVCs of StorageClass `standard` bind
                # (directories under /tmp/hostpath_pv, deleted with their PV).
                "name": "kube-controller-manager",
                "extraArgs": [{"key": "enable-hostpath-provisioner", "value": "true"}],
            },
            {
                # etcd durability is pointless for a throwaway test cluster; skipping fsync is much faster.
                "name": "etcd",
                "extraArgs": [{"key": "unsafe-no-fsync", "value": "true"}],
            },
        ],
    }
    return [config, *stages()]


def write_config(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
