"""Which Kubernetes versions a chart admits: its ``kubeVersion`` constraint against the bundled schemas.

Helm evaluates ``kubeVersion`` with Masterminds semver constraints (``>=1.30.0-0``, ``^1.28``, ``~1.30``,
``1.28.x``, ``>=1.25 <1.35``, ``a || b``, ``1.27 - 1.30``). This module implements that subset so
``homeci lint`` can validate against the oldest and newest schema versions kubernetes-validate ships that
the chart (and every subchart it carries) admits.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from homeci.errors import HomeciError
from homeci.lint.values import load_yaml

# (major, minor, patch, release) — release is 0 for a prerelease such as "1.30.0-0", so it sorts first.
Semver = tuple[int, int, int, int]

_VERSION_RE = re.compile(
    r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_TERM_RE = re.compile(r"(!=|>=|<=|=>|=<|>|<|=|~>|~|\^)?\s*(v?[0-9xX*][0-9A-Za-z.+*-]*)")
# candidate patch numbers tried inside each minor (a constraint may start mid-minor, e.g. >=1.30.5)
_PATCHES = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 99)


@dataclass(frozen=True)
class _Partial:
    parts: tuple[int | None, int | None, int | None]
    pre: bool

    def floor(self) -> Semver:
        a, b, c = (p or 0 for p in self.parts)
        return (a, b, c, 0 if self.pre else 1)


def _parse_version(text: str, constraint: str) -> _Partial:
    m = _VERSION_RE.match(text.strip())
    if not m:
        raise HomeciError(f"kubeVersion {constraint!r}: cannot parse version {text!r}; use e.g. '>=1.30.0-0'")
    nums: list[int | None] = []
    for g in m.groups()[:3]:
        nums.append(None if g is None or g in "xX*" else int(g))
    # "1.x.3" is nonsense; everything after the first wildcard is a wildcard
    for i, n in enumerate(nums):
        if n is None:
            nums[i + 1:] = [None] * (2 - i)
            break
    return _Partial((nums[0], nums[1], nums[2]), m.group(4) is not None)


def _bump(p: _Partial, index: int) -> Semver:
    """The lowest version above every version matching ``p`` at precision ``index`` (0=major, 1=minor)."""
    a, b, _ = (x or 0 for x in p.parts)
    return (a + 1, 0, 0, 0) if index == 0 else (a, b + 1, 0, 0)


def _term(op: str, p: _Partial) -> list[tuple[str, Semver]]:
    """One constraint term as a list of (comparator, bound) pairs that must all hold."""
    wild = next((i for i, n in enumerate(p.parts) if n is None), None)
    lo = p.floor()
    if op in ("", "="):
        if wild is None:
            return [("==", lo)]
        if wild == 0:
            return []
        return [(">=", (lo[0], lo[1], lo[2], 0)), ("<", _bump(p, wild - 1))]
    if op == "!=":
        return [("!=", lo)]
    if op in (">", ">=", "=>"):
        if op == ">" and wild is not None:
            return [(">=", _bump(p, max(wild - 1, 0)))]
        return [(">" if op == ">" else ">=", lo)]
    if op in ("<", "<=", "=<"):
        if op in ("<=", "=<") and wild is not None:
            return [("<", _bump(p, max(wild - 1, 0)))]
        return [("<" if op == "<" else "<=", (lo[0], lo[1], lo[2], 0) if op == "<" and wild else lo)]
    if op in ("~", "~>"):
        precision = 1 if p.parts[1] is not None else 0
        return [(">=", lo), ("<", _bump(p, precision))]
    if op == "^":
        a, b, _ = (x or 0 for x in p.parts)
        if a > 0 or p.parts[1] is None:
            return [(">=", lo), ("<", (a + 1, 0, 0, 0))]
        return [(">=", lo), ("<", (0, b + 1, 0, 0))]
    raise HomeciError(f"unknown operator {op!r}")  # pragma: no cover - regex limits operators


def _check(cmp: str, v: Semver, bound: Semver) -> bool:
    return {
        "==": v[:3] == bound[:3], "!=": v[:3] != bound[:3], ">": v > bound, ">=": v >= bound,
        "<": v < bound, "<=": v <= bound,
    }[cmp]


def parse_constraint(constraint: str) -> list[list[tuple[str, Semver]]]:
    """``a || b`` → alternatives, each a list of comparisons that must all hold."""
    alternatives: list[list[tuple[str, Semver]]] = []
    for alt in constraint.split("||"):
        alt = alt.strip()
        if not alt:
            raise HomeciError(f"kubeVersion {constraint!r}: empty alternative around '||'; remove it")
        terms: list[tuple[str, Semver]] = []
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        if hyphen:
            terms += _term(">=", _parse_version(hyphen.group(1), constraint))
            terms += _term("<=", _parse_version(hyphen.group(2), constraint))
        else:
            pos = 0
            text = alt.replace(",", " ")
            for m in _TERM_RE.finditer(text):
                if text[pos:m.start()].strip():
                    raise HomeciError(f"kubeVersion {constraint!r}: cannot parse {text[pos:m.start()]!r}")
                terms += _term(m.group(1) or "", _parse_version(m.group(2), constraint))
                pos = m.end()
            if text[pos:].strip() or pos == 0:
                raise HomeciError(f"kubeVersion {constraint!r}: cannot parse {alt!r}; use e.g. '>=1.30.0-0'")
        alternatives.append(terms)
    return alternatives


def satisfies(version: str, constraint: str) -> bool:
    p = _parse_version(version, constraint)
    v = p.floor()
    return any(all(_check(c, v, b) for c, b in alt) for alt in parse_constraint(constraint))


@functools.cache
def bundled_minors() -> tuple[str, ...]:
    """Kubernetes minors whose schemas kubernetes-validate ships (e.g. 1.25 … 1.37)."""
    from kubernetes_validate.utils import all_versions

    minors = {".".join(v.split(".")[:2]) for v in all_versions()}
    return tuple(sorted(minors, key=lambda s: tuple(int(x) for x in s.split("."))))


def _chart_constraints(chart: Path) -> list[tuple[Path, str]]:
    """``kubeVersion`` of a chart and every chart it carries under ``charts/``."""
    out: list[tuple[Path, str]] = []
    for chart_yaml in [chart / "Chart.yaml", *sorted((chart / "charts").rglob("Chart.yaml"))]:
        if not chart_yaml.is_file():
            continue
        meta = load_yaml(chart_yaml)
        kv = meta.get("kubeVersion")
        if kv:
            out.append((chart_yaml, str(kv)))
    return out


def admitted_versions(chart: Path) -> list[str]:
    """Full versions (``1.30.0``) for each bundled minor admitted by the chart tree, oldest first.

    The version picked inside a minor is the lowest patch that satisfies every constraint, so
    ``helm template --kube-version`` accepts it too.
    """
    constraints = _chart_constraints(chart)
    admitted: list[str] = []
    for minor in bundled_minors():
        for patch in _PATCHES:
            candidate = f"{minor}.{patch}"
            if all(satisfies(candidate, c) for _, c in constraints):
                admitted.append(candidate)
                break
    if not admitted:
        where = "; ".join(f"{p}: {c!r}" for p, c in constraints)
        raise HomeciError(
            f"kubeVersion admits none of the Kubernetes versions homeci can validate "
            f"({bundled_minors()[0]}–{bundled_minors()[-1]}): {where}; widen the constraint"
        )
    return admitted


def validation_range(chart: Path) -> tuple[str, str]:
    """(oldest, newest) admitted versions — the two ``homeci lint`` validates against."""
    versions = admitted_versions(chart)
    return versions[0], versions[-1]
