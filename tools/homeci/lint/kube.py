"""Rendered objects against the Kubernetes OpenAPI schemas (kubernetes-validate, strict) and CRD schemas.

``kubernetes_validate.validate`` re-reads the 1.8 MB ``_definitions.json`` on every call (~30 ms per
object); :class:`KubeValidator` keeps one compiled validator per (version, kind, apiVersion), built the
same way from the same bundled files, so a lint run validates hundreds of objects in well under a second.
``kubernetes_validate.validate`` remains the reference: the tests check both agree.

Custom resources are validated against the ``openAPIV3Schema`` of a CustomResourceDefinition the chart
renders (``crds/`` or templates); any other custom resource is reported as *unchecked*, never skipped
silently.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kvu
from referencing import Registry, Resource

from homeci.errors import HomeciError
from homeci.lint.values import dotted
from homeci.manifests import Manifest


@dataclass
class KubeReport:
    version: str
    errors: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: int = 0


def _builtin_group(api_version: str) -> bool:
    """True for API groups Kubernetes itself serves (core, ``apps``, ``*.k8s.io``)."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return group == "" or "." not in group or group.endswith(".k8s.io")


@functools.cache
def _schema_file(version: str, name: str) -> Any:
    ref = importlib_resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}.0-local-strict/{name}")
    try:
        return json.loads(ref.read_text())
    except FileNotFoundError:
        return None


_lock = threading.Lock()


@functools.cache
def _registry(version: str) -> Registry:
    defs = _schema_file(version, "_definitions.json")
    if defs is None:
        raise kvu.VersionNotSupportedError(version)
    return Resource.from_contents(defs) @ Registry()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    # same file naming as kubernetes_validate.validate: rbac.authorization.k8s.io/v1 -> rbac-v1
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = _schema_file(version, f"{kind.lower()}-{api}.json")
    if schema is None:
        return None
    registry = Resource.from_contents(schema) @ _registry(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _crd_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema: unknown fields rejected unless preserved."""
    if isinstance(node, list):
        return [_crd_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _crd_schema(v) for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if (node.get("type") == "object" and "properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_validators(objects: Iterable[Manifest]) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) → validator for every CRD version among ``objects``."""
    out: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
    for m in objects:
        if m.kind != "CustomResourceDefinition":
            continue
        spec = m.obj.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for ver in spec.get("versions") or []:
            schema = ((ver or {}).get("schema") or {}).get("openAPIV3Schema")
            if group and kind and isinstance(schema, dict):
                body = _crd_schema(copy.deepcopy(schema))
                props = body.setdefault("properties", {})
                for key, sub in (("apiVersion", {"type": "string"}), ("kind", {"type": "string"}),
                                 ("metadata", {"type": "object"})):
                    props.setdefault(key, sub)
                out[(f"{group}/{ver.get('name')}", str(kind))] = jsonschema.Draft7Validator(body)
    return out




def _messages(errors: Iterable[jsonschema.ValidationError]) -> list[str]:
    out = []
    for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        leaves = list(err.context) if err.context else []
        path = dotted(list(err.absolute_path)) or "(root)"
        msg = err.message if len(err.message) < 300 else err.message[:297] + "..."
        if leaves and err.validator in ("oneOf", "anyOf"):
            best = jsonschema.exceptions.best_match(leaves)
            if best is not None:
                path = dotted(list(best.absolute_path)) or path
                msg = best.message
        out.append(f"{path}: {msg}")
    return out


SCHEMA_DIR = "crd-schemas"


def schema_dirs(chart: Path) -> list[Path]:
    """Where JSON schemas for custom resources may live: ``crd-schemas/`` in the chart (or any chart it
    carries) and ``toolchain/crd-schemas/`` in the checkout. Layout: ``<group>/<kind>_<version>.json``
    (lower-case kind, as in the community CRDs catalog)."""
    dirs = sorted(p for p in chart.rglob(SCHEMA_DIR) if p.is_dir())
    try:
        from homeci.paths import repo_root

        shared = repo_root() / "toolchain" / SCHEMA_DIR
        if shared.is_dir():
            dirs.append(shared)
    except HomeciError:
        pass
    return dirs


def file_validators(dirs: Iterable[Path]) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) → validator for every ``<group>/<kind>_<version>.json`` under ``dirs``."""
    out: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
    for base in dirs:
        for file in sorted(base.glob("*/*_*.json")):
            group, (kind, _, ver) = file.parent.name, file.stem.rpartition("_")
            try:
                schema = json.loads(file.read_text())
            except (OSError, ValueError) as exc:  # ValueError: JSON syntax, or not UTF-8
                raise HomeciError(f"{file}: not a readable JSON schema ({exc}); fix or remove it") from None
            out[(f"{group}/{ver}", kind.lower())] = jsonschema.Draft7Validator(_crd_schema(schema))
    return out


def validate(objects: list[Manifest], version: str, schema_dirs: Iterable[Path] = ()) -> KubeReport:
    """Validate every object against Kubernetes ``version`` (``1.30`` or ``1.30.2``), strict schemas.

    Custom resources: against a CRD among ``objects``, else a JSON schema file in ``schema_dirs``.
    """
    minor = ".".join(version.split(".")[:2])
    report = KubeReport(minor)
    files = file_validators(schema_dirs)
    crds = crd_validators(objects)
    for m in objects:
        api, kind = str(m.obj.get("apiVersion", "")), m.kind
        where = f"{m.source or 'rendered'}: {m.ref}"
        if not api or not kind:
            report.errors.append(f"{where}: apiVersion and kind are required")
            continue
        with _lock:
            builtin = _validator(minor, kind, api)
        if builtin is not None:
            messages: tuple[str, ...] = _builtin_messages(builtin, minor, m.obj)
        else:
            custom = crds.get((api, kind)) or files.get((api, kind.lower()))
            if custom is None:
                if _builtin_group(api):
                    report.errors.append(f"{where}: {api} {kind} does not exist in Kubernetes {minor}; "
                                         "use an apiVersion that version serves")
                else:
                    report.unchecked.append(f"{m.ref} ({api}): no CRD or {SCHEMA_DIR}/ schema")
                continue
            messages = tuple(_messages(custom.iter_errors(m.obj)))
        report.checked += 1
        report.errors += [f"{where}: {msg} (k8s {minor})" for msg in messages]
    return report


# Scenarios of one chart render mostly identical objects: validate each distinct object once per version.
_seen: dict[tuple[str, str], tuple[str, ...]] = {}


def _builtin_messages(validator: Any, minor: str, obj: Mapping[str, Any]) -> tuple[str, ...]:
    key = (minor, json.dumps(obj, sort_keys=True, default=str))
    with _lock:
        cached = _seen.get(key)
    if cached is None:
        cached = tuple(_messages(validator.iter_errors(obj)))
        with _lock:
            _seen[key] = cached
    return cached


def reference_errors(obj: Mapping[str, Any], version: str) -> str | None:
    """kubernetes_validate.validate's verdict (the slow reference path): None if valid, else the message."""
    try:
        kvu.validate(dict(obj), version, strict=True)
    except kvu.ValidationError as exc:
        return f"{dotted(list(exc.absolute_path)) or '(root)'}: {exc.message}"
    return None
