"""Clusters on this machine, one interface (:class:`~homeci.cluster.provider.Cluster`), three providers:

* ``sim`` — the real control plane with simulated (kwok) nodes: API objects, admission and Helm are real,
  no container runs (:mod:`homeci.cluster.sim`);
* ``netns`` — one real node in a network namespace of its own, on a Linux host as root without Docker,
  every image built from source (:mod:`homeci.cluster.netns`; ``local``, its first name, still works);
* ``kind`` — kind's nodes in containers: the machine's Docker engine with kind's published node image and
  upstream images where one answers, else (CI, this kind of host) an engine homeci runs contained in a
  network namespace with a node image and images built from the same pins as the real node
  (:mod:`homeci.cluster.kind`).

:func:`make` builds the provider by name; :func:`choose` picks one for ``--provider auto``.
:mod:`homeci.cluster.install` puts the stack on any of them, :mod:`homeci.cluster.prereqs` checks what
each needs before anything is built.
"""

from __future__ import annotations

from typing import Any

from homeci.cluster.provider import DEFAULT_NAME, Cluster, Status
from homeci.errors import UsageError

PROVIDERS = ("sim", "netns", "kind")
ALIASES = {"local": "netns"}
CHOICES = ("auto", *PROVIDERS, *ALIASES)

__all__ = ["ALIASES", "CHOICES", "DEFAULT_NAME", "PROVIDERS", "Cluster", "Status", "canonical", "choose",
           "make"]


def canonical(provider: str) -> str:
    """The provider's name (``local`` is ``netns``)."""
    name = ALIASES.get(provider, provider)
    if name not in PROVIDERS:
        raise UsageError(f"--provider {provider!r}: use one of {', '.join(CHOICES)}")
    return name


def make(provider: str, name: str = DEFAULT_NAME, **options: Any) -> Cluster:
    """The cluster ``name`` of ``provider`` (it need not exist yet). ``options`` go to the provider
    (netns: ``domain``; kind: ``nodes``, ``offline``)."""
    chosen = canonical(provider)
    if chosen == "sim":
        from homeci.cluster.sim import SimCluster

        return SimCluster(name, domain=options.get("domain"), nodes=options.get("nodes"))
    if chosen == "netns":
        from homeci.cluster.netns import NetnsCluster

        return NetnsCluster(name, domain=options.get("domain"))
    from homeci.cluster.kind import KindCluster

    return KindCluster(name, nodes=int(options.get("nodes") or 1), offline=options.get("offline"),
                       domain=options.get("domain"))


def choose(provider: str = "auto") -> tuple[str, str]:
    """(provider, why) for ``--provider``: kind where a Docker engine answers, else the real node where
    this host can run it, else the simulated cluster."""
    if provider != "auto":
        return canonical(provider), "asked for with --provider"
    from homeci.cluster import prereqs
    from homeci.cluster.kind import engine

    if engine.host_docker_answers():
        return "kind", "a Docker engine answers"
    missing = prereqs.host_problems("netns")
    if not missing:
        return "netns", "no Docker engine; this Linux host runs the real node (netns)"
    return "sim", (f"no Docker engine, and the real node cannot run here ({missing[0]}); the simulated "
                   "cluster runs no container")
