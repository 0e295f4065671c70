"""Values files against values.schema.json, merged like Helm, errors naming file and dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci.errors import HomeciError
from homeci.lint import values

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "charts"


def _errors(chart: str, scenario: str | None) -> list[str]:
    chart_dir = FIXTURES / chart
    scen = chart_dir / "ci" / f"{scenario}-values.yaml" if scenario else None
    return [str(e) for e in values.check_scenario(chart_dir, scen, display=FIXTURES)]


def test_good_chart_values_pass() -> None:
    assert _errors("good", None) == []
    assert _errors("good", "two-replicas") == []


def test_bad_scenario_reports_file_and_dotted_path() -> None:
    errors = _errors("bad-schema", "bad")
    assert "bad-schema/ci/bad-values.yaml: replicas: 'three' is not of type 'integer'" in errors
    tg = "bad-schema/ci/bad-values.yaml: image.tg: unknown key 'tg'"
    assert any(e.startswith(tg) for e in errors), errors
    assert len(errors) == 2, errors


def test_error_attributed_to_values_yaml_when_key_comes_from_there(tmp_path: Path) -> None:
    chart = tmp_path / "c"
    (chart / "ci").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("port: http\nname: ok\n")
    (chart / "values.schema.json").write_text(
        '{"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}')
    (chart / "ci" / "x-values.yaml").write_text("name: 5\n")
    errors = [str(e) for e in values.check_scenario(chart, chart / "ci" / "x-values.yaml", display=tmp_path)]
    assert errors == [  # sorted by path
        "c/ci/x-values.yaml: name: 5 is not of type 'string'",
        "c/values.yaml: port: 'http' is not of type 'integer'",
    ]


def test_null_in_scenario_removes_key_like_helm() -> None:
    assert values.merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}
    assert values.merge({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}  # lists are replaced, not concatenated


def test_subchart_section_validated_against_subchart_schema() -> None:
    errors = _errors("umbrella", "bad-sub")
    assert "umbrella/ci/bad-sub-values.yaml: sub.message: 42 is not of type 'string'" in errors, errors
    assert any(e.startswith("umbrella/ci/bad-sub-values.yaml: sub.colour: unknown key 'colour'")
               for e in errors), errors


def test_disabled_subchart_is_not_validated() -> None:
    assert _errors("umbrella", "sub-off") == []


def test_missing_schema_is_reported(tmp_path: Path) -> None:
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (tmp_path / "values.yaml").write_text("a: 1\n")
    errors = values.check_scenario(tmp_path, None)
    assert len(errors) == 1 and "add a draft-07 values.schema.json" in errors[0].message


def test_corrupt_values_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken-values.yaml"
    bad.write_text("a: [1, 2\nb: c\n")
    with pytest.raises(HomeciError) as exc:
        values.load_yaml(bad)
    assert str(exc.value).startswith(f"{bad}: not valid YAML at line ")
    assert "\n" not in str(exc.value)


def test_invalid_schema_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "values.schema.json").write_text('{"type": "object", "properties": {"a": {"type": 5}}}')
    with pytest.raises(HomeciError, match=r"not a valid draft-07 schema at properties\.a\.type"):
        values.load_schema(tmp_path)
