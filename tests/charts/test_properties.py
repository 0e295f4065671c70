"""Property-based: whatever values a user gives, the chart either renders manifests that pass strict
Kubernetes validation, or refuses them cleanly — in values validation (the schema) or with a template
`fail` sentence — and never crashes inside a template.

Values are generated from the charts' own values.schema.json files (hypothesis-jsonschema) for a few
subtrees at a time, merged over the defaults; a second strategy breaks a generated document at one
place (null, a wrong type, text, a number). Each example is rendered with Helm 3 or Helm 4 (drawn) and
the objects go through homeci's strict validation (``homeci.lint.kube``, the oldest and newest
Kubernetes the chart admits) plus the checks the API server makes that the OpenAPI schemas do not
(names, label and annotation syntax).

``nox -s test`` runs a small, reproducible sample (HOMECI_FUZZ unset: 25 examples per test, derandomized);
``nox -s fuzz`` runs many more with fresh randomness (HOMECI_FUZZ=<examples per test>).

Pass-through Kubernetes objects (``affinity``: any object, handed to the pod spec verbatim) are generated
empty: their content is Kubernetes' own type, which homeci does not restate.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from homeci import manifests as mf
from homeci.helm import Helm, HelmError
from homeci.lint import kube, kubeversions
from homeci.lint.values import merge

from .conftest import NAMESPACE, PIPELINES, PIPELINES_RELEASE, RELEASE, UMBRELLA
from .fuzz import PROFILE
from .refusals import classify, text_of

# --- charts and subtrees -----------------------------------------------------------------------------


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict)
    return data


def _generable(node: Any) -> Any:
    """The schema with pass-through objects (``{"type": "object"}`` and nothing else) generated empty."""
    if isinstance(node, list):
        return [_generable(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "object" and not ({"properties", "additionalProperties", "$ref"} & node.keys()):
        return {**node, "maxProperties": 0}
    return {k: _generable(v) for k, v in node.items()}


def _subschema(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """properties[key] as a standalone schema (the file's definitions carried along)."""
    return _generable({"definitions": schema.get("definitions", {}), **schema["properties"][key]})


@functools.cache
def subtrees(chart: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    """(values path, schema as JSON text) of every section a strategy can regenerate."""
    out: list[tuple[tuple[str, ...], str]] = []
    if chart == "homeci-umbrella":
        top = _json(UMBRELLA / "values.schema.json")
        for key in top["properties"]:
            if key not in ("traefik", "registry", "gogs", "drone"):
                out.append(((key,), json.dumps(_subschema(top, key))))
        for sub in ("traefik", "registry", "gogs", "drone"):
            schema = _json(UMBRELLA / "charts" / sub / "values.schema.json")
            for key in schema["properties"]:
                if key != "global":
                    out.append(((sub, key), json.dumps(_subschema(schema, key))))
    else:
        schema = _json(PIPELINES / "values.schema.json")
        for key in schema["properties"]:
            if key != "global":
                out.append(((key,), json.dumps(_subschema(schema, key))))
    return tuple(out)


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


# The pipelines chart renders its interesting objects only with a target; its scenarios give one.
BASE = {"homeci-umbrella": {}, "drone-pipelines": _yaml(PIPELINES / "ci" / "default-values.yaml")}


@st.composite
def generated_values(draw: st.DrawFn, chart: str) -> dict[str, Any]:
    """An override: one to three sections regenerated from their schema, merged over the chart's base."""
    picks = draw(st.lists(st.sampled_from(subtrees(chart)), min_size=1, max_size=3, unique_by=lambda s: s[0]))
    override = copy.deepcopy(BASE[chart])
    for path, schema in picks:
        override = merge(override, _nested(path, draw(from_schema(json.loads(schema)))))
    return override


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.sampled_from(["", "latest", "0", "-1", "1.5.5", "10foo", "a b", "{{ .x }}",
                                           "192.168.1.10", "null", "[]", "%s", "\\"]),
    st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                                                max_size=2),
)


def _leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, str(key)))
            out += _leaf_paths(value, (*prefix, str(key)))
    return out


@st.composite
def broken_values(draw: st.DrawFn, chart: str) -> dict[str, Any]:
    """A generated override with one value (a section or a leaf, of the defaults) replaced by junk."""
    override = draw(generated_values(chart))
    defaults = merge(_yaml(CHARTS[chart][0] / "values.yaml"), override)
    candidates = [p for p in _leaf_paths(defaults) if p[0] != "global" or chart == "homeci-umbrella"]
    if chart == "homeci-umbrella":
        for sub in ("traefik", "registry", "gogs", "drone"):
            sub_defaults = _yaml(UMBRELLA / "charts" / sub / "values.yaml")
            candidates += [(sub, *p) for p in _leaf_paths(sub_defaults) if p[0] != "global"]
    path = draw(st.sampled_from(sorted(set(candidates))))
    return merge(override, _nested(path, draw(JUNK)))


# --- rendering and judging ---------------------------------------------------------------------------

CHARTS = {"homeci-umbrella": (UMBRELLA, RELEASE), "drone-pipelines": (PIPELINES, PIPELINES_RELEASE)}

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAMED = ("Service", "Namespace")  # names that must be DNS labels, not subdomains


def _label_maps(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every ``labels``/``matchLabels``/``nodeSelector`` map in an object, with its path."""
    found = mf.fields(obj, ("labels", "matchLabels", "nodeSelector"))
    return [(w, v) for w, v in found if isinstance(v, dict)]


def apiserver_problems(objects: list[mf.Manifest]) -> list[str]:
    """What the API server refuses although the OpenAPI schemas allow it: names, labels, annotations."""
    problems = []
    for m in objects:
        name = m.name
        rule = DNS_LABEL if m.kind in LABEL_NAMED else DNS_SUBDOMAIN
        limit = 63 if m.kind in LABEL_NAMED else 253
        if not rule.match(name) or len(name) > limit:
            problems.append(f"{m.ref}: metadata.name {name!r} is not a valid {m.kind} name")
        for where, labels in _label_maps(m.obj):
            for key, value in labels.items():
                if not QUALIFIED_NAME.match(str(key)) or len(str(key).rsplit("/", 1)[-1]) > 63:
                    problems.append(f"{m.ref}: {where} key {key!r} is not a valid label key")
                if not isinstance(value, str) or not LABEL_VALUE.match(value) or len(value) > 63:
                    problems.append(f"{m.ref}: {where}[{key}] = {value!r} is not a valid label value")
        for where, node in _annotation_maps(m.obj):
            for key in node:
                if not QUALIFIED_NAME.match(str(key)):
                    problems.append(f"{m.ref}: {where} key {key!r} is not a valid annotation key")
        for path, c in m.containers():
            image = str(c.get("image", ""))
            if not image or image != image.strip() or any(ch.isspace() for ch in image):
                problems.append(f"{m.ref} {path}.image {image!r} is not an image reference")
    return problems


def _annotation_maps(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(w, v) for w, v in mf.fields(obj, ("annotations",)) if isinstance(v, dict)]


def as_yaml(values: dict[str, Any]) -> str:
    """JSON, which is YAML too and unambiguous (PyYAML's YAML 1.1 output can read differently in Go's
    YAML), with the C1 control characters YAML forbids raw written as escapes (JSON escapes the rest)."""
    text = json.dumps(values, indent=1, ensure_ascii=False)
    return re.sub("[\x7f-\x9f\u2028\u2029\ufeff]", lambda m: f"\\u{ord(m.group(0)):04x}", text)


def judge(chart: str, override: dict[str, Any], major: int, tmp_path: Path, *,
          schema_valid: bool = False) -> str:
    """Render ``override`` and return what happened ("rendered", "schema", "fail"); assert it was clean.
    ``schema_valid``: the values were generated valid, so Helm's own schema check must agree."""
    directory, release = CHARTS[chart]
    values = tmp_path / "values.yaml"
    values.write_text(as_yaml(override))
    note(f"Helm {major}, values:\n{values.read_text()}")
    oldest, newest = kubeversions.validation_range(directory)
    problems: list[str] = []
    # Rendered for each end of the supported range and validated against that version: the charts adapt
    # to the cluster (e.g. the step CA's MutatingAdmissionPolicy only from Kubernetes 1.36).
    for version in (newest, oldest):
        try:
            text = Helm(major).template(directory, release=release, namespace=NAMESPACE,
                                        values_files=[values], kube_version=version)
        except HelmError as exc:
            outcome = classify(exc)
            assert not (schema_valid and outcome == "schema"), (
                f"Helm {major}'s schema check refuses values the schema accepts (jsonschema): {text_of(exc)}")
            if version == newest:
                return outcome
            # a value only the newer cluster can serve (e.g. stepCA.delivery=admissionPolicy) is refused
            # on the older one with one sentence, like any other refusal
            continue
        objects = mf.parse(text)
        problems += apiserver_problems(objects)
        problems += kube.validate(objects, version, kube.schema_dirs(directory)).errors
    assert not problems, f"Helm {major} rendered objects Kubernetes refuses:\n" + "\n".join(problems)
    return "rendered"


MAJORS = st.sampled_from([3, 4])


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_schema_valid_values_render_valid_manifests(chart: str,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    @PROFILE
    @given(override=generated_values(chart), major=MAJORS)
    def check(override: dict[str, Any], major: int) -> None:
        outcome = judge(chart, override, major, tmp_path_factory.mktemp("values"), schema_valid=True)
        note(f"outcome: {outcome}")

    check()


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_broken_values_are_refused_cleanly(chart: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    @PROFILE
    @given(override=broken_values(chart), major=MAJORS)
    def check(override: dict[str, Any], major: int) -> None:
        judge(chart, override, major, tmp_path_factory.mktemp("values"))

    check()
