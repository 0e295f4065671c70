"""One Kubernetes resource quantity rule, the same text in every values.schema.json, checked against
Kubernetes' own parser.

The shared definition ``definitions.quantity`` is Kubernetes' quantity grammar (``resource.ParseQuantity``
of k8s.io/apimachinery) with three deliberate restrictions, each of which Kubernetes accepts but no
homeci value wants: the value must be above zero (a zero size or limit is a mistake), no ``-`` sign,
and an exponent has at most two digits (the real parser needs seconds and gigabytes for ``1e999999``).
The examples below are checked against the schema always, and against the real parser (a small Go
program, tests/fixtures/quantity) wherever Go can build it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeci import paths
from homeci.helm import Helm, HelmError

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, ROOT, UMBRELLA
from .fuzz import PROFILE

SCHEMAS = sorted([*ROOT.glob("charts/*/values.schema.json"), *UMBRELLA.glob("charts/*/values.schema.json")])
GO_PROGRAM = ROOT / "tests" / "fixtures" / "quantity"

# (text, Kubernetes' verdict: "error" or "ok <sign>") — the verdicts are what resource.ParseQuantity
# says (test_examples_match_kubernetes checks them whenever Go is available).
EXAMPLES: list[tuple[str, str]] = [
    ("1", "ok 1"), ("250m", "ok 1"), ("0.5", "ok 1"), ("1.", "ok 1"), (".5", "ok 1"), ("+.5", "ok 1"),
    ("64Mi", "ok 1"), ("10Gi", "ok 1"), ("1Ei", "ok 1"), ("1k", "ok 1"), ("1G", "ok 1"), ("1E", "ok 1"),
    ("1n", "ok 1"), ("1u", "ok 1"), ("1e3", "ok 1"), ("1E3", "ok 1"), ("1e+3", "ok 1"), ("1E-3", "ok 1"),
    ("1e-9", "ok 1"), ("1e18", "ok 1"), ("007", "ok 1"), ("+1", "ok 1"), ("1.5Gi", "ok 1"),
    ("0.001m", "ok 1"),
    # Kubernetes accepts, homeci refuses (zero, negative, a three-digit exponent)
    ("0", "ok 0"), ("0Gi", "ok 0"), ("00.00", "ok 0"), (".", "ok 0"), ("0e5", "ok 0"), ("-1", "ok -1"),
    ("-64Mi", "ok -1"), ("1e100", "ok 1"), ("Gi", "ok 0"), ("e3", "ok 0"),
    # Kubernetes refuses
    ("", "error"), ("10foo", "error"), ("1.5.5", "error"), ("1K", "error"), ("1ki", "error"),
    ("1e", "error"), ("1e1.5", "error"), (" 1", "error"), ("1 ", "error"), ("1Mi5", "error"),
    ("0x10", "error"), ("1_000", "error"), ("1GiB", "error"), ("1MB", "error"),
    ("--1", "error"), ("1.0.", "error"),
]


def homeci_accepts(text: str, verdict: str) -> bool:
    """What the schema must say, from Kubernetes' verdict and homeci's three restrictions."""
    exponent = re.search(r"[eE][-+]?([0-9]+)$", text)
    return verdict == "ok 1" and not text.startswith("-") and not (exponent and len(exponent.group(1)) > 2)


def _definitions() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()).get("definitions", {}) for path in SCHEMAS}


def quantity_validator() -> jsonschema.Draft7Validator:
    definitions = _definitions()[UMBRELLA / "values.schema.json"]
    return jsonschema.Draft7Validator({"definitions": definitions, "$ref": "#/definitions/quantity"})


def test_schemas_found() -> None:
    assert len(SCHEMAS) == 6, [str(p) for p in SCHEMAS]


@pytest.mark.parametrize("name", ["quantity", "size", "cpuMem", "resources", "imageRepository", "imageTag",
                                  "imageDigest", "pullPolicy", "image", "imageRef"])
def test_shared_definitions_are_identical(name: str) -> None:
    """Every schema that has a shared definition has it with the same text (assembled from fragments)."""
    found = {p.relative_to(ROOT).as_posix(): d[name] for p, d in _definitions().items() if name in d}
    assert found, f"no schema defines {name}"
    texts = {json.dumps(d, sort_keys=True) for d in found.values()}
    assert len(texts) == 1, f"definitions.{name} differs between: {', '.join(sorted(found))}"


def _properties(node: Any, definitions: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], dict[str, Any]]]:
    """(dotted key path, schema) of every property, $refs followed."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref", "")
    target = definitions.get(ref.removeprefix("#/definitions/"), {}) if ref else node
    for key, sub in (target.get("properties") or {}).items():
        yield (*path, key), sub
        yield from _properties(sub, definitions, (*path, key))


def _ref(node: dict[str, Any]) -> str | None:
    """The definition a property refers to, when it is only that reference (and its description)."""
    return node.get("$ref") if set(node) <= {"$ref", "description"} else None


# Drone's own step settings, not Kubernetes quantities: millicores and Drone's byte units (512MiB).
DRONE_UNITS = ("pipeline.resources.",)


@pytest.mark.parametrize("schema", SCHEMAS, ids=[p.relative_to(ROOT).as_posix() for p in SCHEMAS])
def test_every_quantity_uses_the_shared_definition(schema: Path) -> None:
    body = json.loads(schema.read_text())
    definitions = body.get("definitions", {})
    problems = []
    for path, sub in _properties(body, definitions):
        dotted = ".".join(path)
        quantity = path[-1] in ("cpu", "memory") and not dotted.startswith(DRONE_UNITS)
        if quantity and _ref(sub) != "#/definitions/quantity":
            problems.append(f"{dotted} is {json.dumps(sub)}, not the shared quantity")
        if path[-1] == "size" and _ref(sub) != "#/definitions/size":
            problems.append(f"{dotted} is {json.dumps(sub)}, not the shared size")
    for name, definition in definitions.items():
        if name not in ("quantity", "size") and "pattern" in definition and "Ki" in definition["pattern"]:
            problems.append(f"definitions.{name} has a quantity pattern of its own")
    assert not problems, f"{schema.relative_to(ROOT)}: " + "; ".join(problems)


@pytest.mark.parametrize(("text", "verdict"), EXAMPLES, ids=[repr(t) for t, _ in EXAMPLES])
def test_schema_follows_the_kubernetes_grammar(text: str, verdict: str) -> None:
    accepted = quantity_validator().is_valid(text)
    assert accepted == homeci_accepts(text, verdict), (
        f"quantity {text!r}: Kubernetes says {verdict}, the schema {'accepts' if accepted else 'refuses'} it"
    )


@pytest.mark.parametrize(("number", "accepted"), [(1, True), (0.5, True), (2048, True), (1e-3, True),
                                                   (0, False), (-1, False), (-0.5, False)])
def test_numbers(number: float, accepted: bool) -> None:
    assert quantity_validator().is_valid(number) == accepted, f"quantity {number!r}"


def test_size_is_a_string() -> None:
    definitions = _definitions()[UMBRELLA / "charts" / "registry" / "values.schema.json"]
    size = jsonschema.Draft7Validator({"definitions": definitions, "$ref": "#/definitions/size"})
    assert size.is_valid("10Gi") and not size.is_valid(10) and not size.is_valid("0Gi")


# --- the real parser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_parser() -> Path:
    """tests/fixtures/quantity built once (cached by its sources' digest); skips where Go cannot build it."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed: the quantity grammar is checked against the examples only")
    sources = sorted(p for p in GO_PROGRAM.iterdir() if p.suffix in (".go", ".mod", ".sum"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()[:12]
    target = paths.cache_dir() / "quantity-check" / digest / "quantity"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"quantity.{os.getpid()}.tmp")
        proc = subprocess.run([go, "build", "-o", str(partial), "."], cwd=GO_PROGRAM, capture_output=True,
                              text=True, check=False, timeout=900,
                              env=dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod"))
        if proc.returncode != 0:
            pytest.skip(f"cannot build tests/fixtures/quantity (k8s.io/apimachinery): {proc.stderr[-300:]}")
        os.replace(partial, target)
    return target


def parse_with_kubernetes(binary: Path, texts: list[str]) -> list[str]:
    assert all("\n" not in t for t in texts)
    out = subprocess.run([str(binary)], input="".join(f"{t}\n" for t in texts), capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert len(out) == len(texts), "the quantity parser answered a different number of lines"
    return out


def test_examples_match_kubernetes(kubernetes_parser: Path) -> None:
    texts = [t for t, _ in EXAMPLES]
    real = parse_with_kubernetes(kubernetes_parser, texts)
    wrong = [f"{t!r}: table says {v}, Kubernetes {r}"
             for (t, v), r in zip(EXAMPLES, real, strict=True) if v != r]
    assert not wrong, "; ".join(wrong)


# Every string of up to MAX_LENGTH characters over this alphabet: digits, point, signs, every suffix
# letter Kubernetes knows and some it does not.
ALPHABET = "019.+-eEiKkMmGnuP x"
MAX_LENGTH = 4


def all_strings(alphabet: str, max_length: int) -> list[str]:
    return ["".join(p) for n in range(1, max_length + 1) for p in itertools.product(alphabet, repeat=n)]


def agreement_problems(binary: Path, texts: list[str]) -> list[str]:
    validator = quantity_validator()
    problems = []
    for text, verdict in zip(texts, parse_with_kubernetes(binary, texts), strict=True):
        ours = validator.is_valid(text)
        if ours != homeci_accepts(text, verdict):
            problems.append(f"{text!r}: Kubernetes {verdict}, schema {'accepts' if ours else 'refuses'}")
    return problems


def test_every_short_string_agrees_with_kubernetes(kubernetes_parser: Path) -> None:
    """Exhaustive over short strings: the schema accepts exactly what Kubernetes parses to a value above
    zero (minus the documented restrictions). ``nox -s fuzz`` goes further with random longer strings."""
    texts = all_strings(ALPHABET, MAX_LENGTH)
    problems = agreement_problems(kubernetes_parser, texts)
    assert not problems, f"{len(problems)} of {len(texts)} disagree: " + "; ".join(problems[:20])


# Longer candidates: a number-like head and a suffix-like tail, so most are near the grammar's edges.
CANDIDATES = st.lists(
    st.builds(lambda head, tail: head + tail, st.text("0123456789.+-", max_size=8),
              st.text("eEiKkMmGgTPnux0123456789+-. ", max_size=5)),
    min_size=50, max_size=200,
)


def test_random_strings_agree_with_kubernetes(kubernetes_parser: Path) -> None:
    @PROFILE
    @given(texts=CANDIDATES)
    def check(texts: list[str]) -> None:
        problems = agreement_problems(kubernetes_parser, texts)
        assert not problems, "; ".join(problems[:20])

    check()


# --- Helm 3 and 4 apply the same pattern (Go regexp) ---------------------------------------------------

HELM_EXAMPLES = [("250m", True), ("1.5Gi", True), ("1e3", True), ("0", False), ("10foo", False),
                 ("1.5.5", False), ("1K", False), ("-1", False)]


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize(("text", "accepted"), HELM_EXAMPLES, ids=[t for t, _ in HELM_EXAMPLES])
def test_helm_applies_the_rule(text: str, accepted: bool, major: int) -> None:
    sets = [f"traefik.resources.limits.memory={text}"]
    if accepted:
        Helm(major).template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION,
                             set_values=sets)
        return
    with pytest.raises(HelmError) as info:
        Helm(major).template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION,
                             set_values=sets)
    message = f"{info.value} {info.value.stderr}"
    assert "/resources/limits/memory" in message and "schema" in message, message
