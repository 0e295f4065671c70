"""Rendered objects against Kubernetes schemas (strict) and CRD schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci import rendering
from homeci.errors import HomeciError
from homeci.lint import kube
from homeci.manifests import Manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "charts"


def _render(chart: str, scenario: str | None = None, kube_version: str = "1.30.0") -> list[Manifest]:
    values = [FIXTURES / chart / "ci" / f"{scenario}-values.yaml"] if scenario else []
    return rendering.render(FIXTURES / chart, values, kube_version=kube_version)


def test_good_chart_is_valid_for_both_ends_of_its_range() -> None:
    for version in ("1.30.0", "1.37.0"):
        report = kube.validate(_render("good", kube_version=version), version)
        assert report.errors == [] and report.unchecked == []
        assert report.checked == 2


def test_render_sees_the_kube_version_it_is_validated_for() -> None:
    deploy = next(m for m in _render("good", kube_version="1.37.0") if m.kind == "Deployment")
    assert deploy.obj["spec"]["template"]["metadata"]["annotations"]["homeci.test/kube-version"] == "v1.37.0"


def test_invalid_objects_are_caught_with_object_and_field() -> None:
    report = kube.validate(_render("bad-k8s", kube_version="1.25.0"), "1.25")
    errors = report.errors
    assert any("Deployment/homeci-bad: spec.replicas: '1' is not of type 'integer'" in e for e in errors)
    assert any("containers[0]: Additional properties are not allowed ('healthProbe'" in e for e in errors)


def test_removed_api_fails_only_where_it_is_gone() -> None:
    old = kube.validate(_render("bad-k8s", "old-api", kube_version="1.25.0"), "1.25")
    new = kube.validate(_render("bad-k8s", "old-api", kube_version="1.37.0"), "1.37")
    assert not any("HorizontalPodAutoscaler" in e for e in old.errors)
    assert any("autoscaling/v2beta2 HorizontalPodAutoscaler does not exist in Kubernetes 1.37" in e
               for e in new.errors), new.errors


WITH_CRD_SCHEMAS = [FIXTURES / "with-crd" / "crd-schemas"]


def test_custom_resources_checked_against_shipped_crd_and_others_listed_unchecked() -> None:
    assert kube.schema_dirs(FIXTURES / "with-crd")[0] == WITH_CRD_SCHEMAS[0]
    good = kube.validate(_render("with-crd"), "1.30", WITH_CRD_SCHEMAS)
    assert good.errors == []
    assert good.checked == 3  # the CRD, the Widget (by the CRD), the Middleware (by crd-schemas/)
    assert good.unchecked == ["Gadget/homeci-gadget (gadgets.example.org/v1): no CRD or crd-schemas/ schema"]
    without = kube.validate(_render("with-crd"), "1.30")
    assert len(without.unchecked) == 2
    bad = kube.validate(_render("with-crd", "bad-widget"), "1.30", WITH_CRD_SCHEMAS)
    assert any("Widget/homeci-widget: spec.size: 'huge' is not of type 'integer'" in e for e in bad.errors)


def test_crd_schema_rejects_unknown_fields_unless_preserved() -> None:
    objects = _render("with-crd")
    widget = next(m for m in objects if m.kind == "Widget")
    widget.obj["spec"]["unknownField"] = 1
    widget.obj["spec"]["extra"]["free"] = {"form": True}  # x-kubernetes-preserve-unknown-fields
    report = kube.validate(objects, "1.30")
    assert len(report.errors) == 1 and "'unknownField' was unexpected" in report.errors[0]


@pytest.mark.parametrize("chart", ["good", "bad-k8s"])
def test_cached_validator_agrees_with_kubernetes_validate(chart: str) -> None:
    for m in _render(chart, kube_version="1.30.0"):
        ours = kube.validate([m], "1.30").errors
        reference = kube.reference_errors(m.obj, "1.30")
        assert bool(ours) == (reference is not None), f"{m.ref}: ours={ours} reference={reference}"


def test_custom_resource_against_json_schema_file() -> None:
    objects = _render("with-crd")
    middleware = next(m for m in objects if m.kind == "Middleware")
    middleware.obj["spec"]["headers"]["stsSeconds"] = "one year"
    middleware.obj["spec"]["headers"]["frameDenny"] = True
    errors = kube.validate(objects, "1.30", WITH_CRD_SCHEMAS).errors
    assert any("Middleware/homeci-headers: spec.headers: Additional properties are not allowed ('frameDenny'"
               in e for e in errors), errors
    assert any("Middleware/homeci-headers: spec.headers.stsSeconds: 'one year' is not of type 'integer'" in e
               for e in errors), errors


def test_corrupt_json_schema_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "traefik.io").mkdir()
    (tmp_path / "traefik.io" / "middleware_v1alpha1.json").write_text("{nope")
    with pytest.raises(HomeciError, match=r"middleware_v1alpha1\.json: not a readable JSON schema"):
        kube.file_validators([tmp_path])
