"""Names taken from values stay strings in the rendered YAML, even when they read as numbers or booleans
("0", "1.5", "on" are valid Kubernetes names): every such field is quoted by the templates. Found by
the property test (tests/charts/test_properties.py); these cases keep each one fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from homeci import manifests as mf
from homeci.lint import kube
from homeci.lint.values import merge

from .conftest import KUBE_VERSION, PIPELINES, render_pipelines, render_umbrella, scenario_values

# Fields whose value is a name (or a Secret key): they must be strings wherever they appear.
NAME_FIELDS = {"name", "namespace", "secretName", "claimName", "storageClassName", "ingressClassName", "key"}

# (values, the rendered strings that must appear) — each value is a valid name YAML would retype.
Case = tuple[dict[str, Any], tuple[str, ...]]
UMBRELLA_CASES: dict[str, Case] = {
    "pull-secret": ({"global": {"imagePullSecrets": ["123"]}}, ("123",)),
    "storage-class": ({"global": {"storageClass": "1.5"}}, ("1.5",)),
    "ingress-class": ({"global": {"ingressClass": "on"}}, ("on",)),
    "admin-secret": ({"global": {"admin": {"existingSecret": "7"}}}, ("7",)),
    "registry-auth-secret": ({"registry": {"auth": {"existingSecret": "0"}}}, ("0",)),
    "registry-http-secret": ({"registry": {"httpSecret": {"existingSecret": "1", "key": "2"}}}, ("1", "2")),
    "registry-claim": ({"registry": {"persistence": {"existingClaim": "3"}}}, ("3",)),
    "gogs-postgres-secret": (
        {"gogs": {"database": {"type": "postgres", "postgres": {"host": "db", "existingSecret": "4"}}}},
        ("4",),
    ),
    "gogs-secret-key": ({"gogs": {"secretKey": {"existingSecret": "5"}}}, ("5",)),
    "drone-secrets": (
        {"drone": {"server": {"existingSecret": "6"}, "machine": {"existingSecret": "8"}}},
        ("6", "8"),
    ),
    "traefik-watched-namespace": ({"traefik": {"watchNamespaces": ["9"]}}, ("9",)),
}
# The pipelines chart renders its per-target objects offline when the credentials and the CA are given,
# as its default scenario does.
PIPELINES_BASE = scenario_values(PIPELINES / "ci" / "default-values.yaml")
PIPELINES_CASES: dict[str, Case] = {
    "target-namespace": ({"targets": [{"namespace": "10", "owners": ["homeci"]}]}, ("10",)),
    "pull-secret-name": ({"registry": {"pullSecretName": "11"}}, ("11",)),
    "ca-configmap-name": ({"ca": {"configMapName": "12"}}, ("12",)),
}


def _names(node: Any) -> list[tuple[str, Any]]:
    return [(w, v) for w, v in mf.fields(node, NAME_FIELDS) if not isinstance(v, (dict, list))]


def check(objects: list[mf.Manifest], wanted: tuple[str, ...]) -> None:
    # keyed by namespace too: one Role per watched namespace shares its kind and name
    found = {(m.ref, m.namespace, where): value for m in objects for where, value in _names(m.obj)}
    retyped = [f"{ref} {where} = {value!r} ({type(value).__name__})"
               for (ref, _, where), value in found.items() if not isinstance(value, str)]
    assert not retyped, "names rendered as other YAML types:\n" + "\n".join(retyped)
    missing = [w for w in wanted if w not in found.values()]
    assert not missing, f"no name field renders {missing} (the case does not reach the templates)"
    errors = kube.validate(objects, KUBE_VERSION).errors
    assert not errors, "\n".join(errors)


def values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    """JSON (YAML too): what the test writes as strings stays strings, unlike --set."""
    path = tmp_path / "values.yaml"
    path.write_text(json.dumps(values))
    return path


@pytest.mark.parametrize("case", sorted(UMBRELLA_CASES))
def test_umbrella_names_stay_strings(case: str, tmp_path: Path) -> None:
    values, wanted = UMBRELLA_CASES[case]
    check(render_umbrella([values_file(tmp_path, values)]), wanted)


@pytest.mark.parametrize("case", sorted(PIPELINES_CASES))
def test_pipelines_names_stay_strings(case: str, tmp_path: Path) -> None:
    values, wanted = PIPELINES_CASES[case]
    check(render_pipelines([values_file(tmp_path, merge(PIPELINES_BASE, values))]), wanted)
