"""kubeVersion constraints → the Kubernetes versions homeci lint validates against."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci.errors import HomeciError
from homeci.lint import kubeversions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "charts"


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        (">=1.30.0-0", "1.30.0", True),
        (">=1.30.0-0", "1.29.9", False),
        ("<1.35.0-0", "1.34.99", True),
        ("<1.35.0-0", "1.35.0", False),
        (">=1.25 <1.35", "1.34.0", True),
        (">=1.25, <1.35", "1.35.0", False),
        ("^1.28", "1.37.0", True),
        ("^1.28", "2.0.0", False),
        ("~1.30", "1.30.7", True),
        ("~1.30", "1.31.0", False),
        ("1.28.x", "1.28.3", True),
        ("1.28.x", "1.29.0", False),
        ("1.27 - 1.30", "1.30.9", True),
        ("1.27 - 1.30", "1.31.0", False),
        ("<1.26 || >1.36", "1.37.0", True),
        ("<1.26 || >1.36", "1.30.0", False),
        (">=1.30.5", "1.30.5", True),
        (">=1.30.5", "1.30.4", False),
        ("!=1.31.0", "1.31.0", False),
    ],
)
def test_constraint(constraint: str, version: str, expected: bool) -> None:
    assert kubeversions.satisfies(version, constraint) is expected, f"{version} vs {constraint!r}"


def test_bundled_minors_span_125_to_137() -> None:
    minors = kubeversions.bundled_minors()
    assert minors[0] == "1.25"
    assert minors[-1] == "1.37"


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ("good", ("1.30.0", "1.37.0")),        # >=1.30.0-0
        ("bad-k8s", ("1.25.0", "1.37.0")),     # no kubeVersion: everything bundled
        ("with-crd", ("1.28.0", "1.35.0")),    # >=1.28.0-0 <1.36.0-0
        ("umbrella", ("1.29.0", "1.36.0")),    # umbrella >=1.29 and its subchart <1.37
    ],
)
def test_validation_range(chart: str, expected: tuple[str, str]) -> None:
    assert kubeversions.validation_range(FIXTURES / chart) == expected


def test_constraint_admitting_nothing_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\nkubeVersion: '<1.20'\n")
    with pytest.raises(HomeciError) as exc:
        kubeversions.validation_range(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "'<1.20'" in msg and "widen the constraint" in msg


def test_unparseable_constraint(tmp_path: Path) -> None:
    with pytest.raises(HomeciError, match="cannot parse"):
        kubeversions.satisfies("1.30.0", ">= one.two")
