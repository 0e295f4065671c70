"""Rendered manifests as Python objects: parse a ``helm template`` stream, find objects and containers."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from homeci.errors import HomeciError

# A DNS-1123 label: Kubernetes namespace and object names, Helm release names, each label of a host name.
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"

POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


@dataclass
class Manifest:
    """One rendered object and the template it came from."""

    obj: dict[str, Any]
    source: str = ""

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.obj.get("metadata", {}).get("namespace")
        return str(ns) if ns is not None else None

    @property
    def ref(self) -> str:
        """``Kind/name`` — how failure messages name an object."""
        return f"{self.kind}/{self.name}"

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.obj.get("metadata", {}).get("annotations") or {})

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.obj.get("metadata", {}).get("labels") or {})

    def pod_spec(self) -> dict[str, Any] | None:
        path = POD_TEMPLATE_PATHS.get(self.kind)
        if path is None:
            return None
        node: Any = self.obj
        for key in path:
            node = (node or {}).get(key)
        return node if isinstance(node, dict) else None

    def containers(self, *, init: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``spec.containers[name]``-style path, container) for every container of a workload."""
        spec = self.pod_spec()
        if spec is None:
            return
        keys = ("initContainers", "containers") if init else ("containers",)
        for key in keys:
            for c in spec.get(key) or []:
                yield f"{key}[{c.get('name')}]", c

    def container(self, name: str) -> dict[str, Any]:
        """The (non-init) container called ``name``; an AssertionError naming the object if absent."""
        for _, c in self.containers(init=False):
            if c.get("name") == name:
                return c
        raise AssertionError(f"{self.ref} has no container named {name}")


# libyaml when available: about 10x faster on a full umbrella render.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEPARATOR = re.compile(r"(?m)^---[ \t]*$")
_SOURCE = re.compile(r"(?m)^# Source: (.+)$")


def fields(node: Any, keys: Collection[str], path: str = "") -> Iterator[tuple[str, Any]]:
    """Every value held under one of ``keys`` anywhere in ``node``, with its path (``spec.template.metadata
    .labels``, list items as ``[i]``); matched values are searched too."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in keys:
                yield where, value
            yield from fields(value, keys, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from fields(value, keys, f"{path}[{i}]")


def parse(stream: str, *, shared: bool = False) -> list[Manifest]:
    """Parse a multi-document YAML stream; remembers each document's ``# Source:`` template.

    Documents keep their exact text (a block scalar's trailing newline included), so parsed values
    equal what Helm sent to the cluster. ``shared``: a document seen before (the same text in another
    render: most of a chart's objects are the same across its scenarios and Kubernetes versions) is not
    parsed again, and its objects are shared between the results: read-only callers only (``homeci
    lint``); everyone else gets fresh objects they may change."""
    out: list[Manifest] = []
    for chunk in _SEPARATOR.split(stream):
        match = _SOURCE.search(chunk)
        source = match.group(1).strip() if match else ""
        docs = _parse_shared(chunk, source) if shared else _parse_document(chunk, source)
        out.extend(Manifest(doc, source) for doc in docs)
    return out


def _parse_document(chunk: str, source: str) -> tuple[dict[str, Any], ...]:
    """One document as its objects (a ``List``'s items, or the document itself; none if empty)."""
    try:
        doc = yaml.load(chunk, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise HomeciError(f"{source or 'rendered output'}: not valid YAML ({exc})") from None
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise HomeciError(f"{source or 'rendered output'}: a document is not a mapping")
    if doc.get("kind") == "List":
        return tuple(doc.get("items") or [])
    return (doc,)


# Bounded: a long test session lints many charts; a full umbrella render is about 70 documents.
_parse_shared = functools.lru_cache(maxsize=4096)(_parse_document)


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def get(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for m in manifests:
        if m.kind == kind and m.name == name:
            return m
    have = ", ".join(sorted(m.ref for m in manifests if m.kind == kind)) or "none"
    raise KeyError(f"{kind}/{name} not rendered (rendered {kind}s: {have})")
